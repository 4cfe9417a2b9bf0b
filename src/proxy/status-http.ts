// The status page's requests on the proxy's own port: which requests ask
// for it (origin-form /_pkgtorrent/ and a plain /: a proxy request is
// absolute-form, a mirror-mode one /NAME/<path>), the address clients are
// told to use (the Host the browser used, when it is a plain host[:port]),
// and the answer: GET and HEAD only, never cached, and under a
// Content-Security-Policy allowing no script at all (the page has none;
// should escaping ever fail, nothing injected runs).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { Outcome } from './handle.js';
import { renderStatusPage } from './status-page.js';
import type { StatusSnapshot } from './status.js';

/** The page's path segment: no --mirror may take this name. */
export const STATUS_NAME = '_pkgtorrent';

export type StatusFormat = 'html' | 'json';

/** The format asked for when `raw` (the request target) is the status page; null for any other request. */
export function statusRequest(raw: string): StatusFormat | null {
  if (!raw.startsWith('/')) return null;
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  if (path !== '/' && path !== `/${STATUS_NAME}` && path !== `/${STATUS_NAME}/`) return null;
  return new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)).get('format') === 'json' ? 'json' : 'html';
}

const HOST_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/**
 * http://<Host> when the Host header is a plain host name or address with
 * an optional port (what a browser sends); `fallback` (the listen address)
 * for anything else or none.
 */
export function clientFacingUrl(host: string | undefined, fallback: string): string {
  const m = /^(\[[^\]]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(host ?? '');
  if (!m) return fallback;
  const name = m[1]!;
  const port = m[2] === undefined ? null : Number(m[2]);
  const ok = name.startsWith('[') ? isIP(name.slice(1, -1)) === 6 : isIP(name) === 4 || (name.length <= 253 && HOST_NAME.test(name));
  if (!ok || (port !== null && (port < 1 || port > 65535))) return fallback;
  return `http://${name.toLowerCase()}${port === null ? '' : `:${port}`}`;
}

const HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
};

/** Answers a status page request; the Outcome is for the access log (path `status`). */
export async function answerStatus(req: IncomingMessage, res: ServerResponse, format: StatusFormat, snapshot: () => Promise<StatusSnapshot>): Promise<Outcome> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    const body = 'the status page answers GET and HEAD only\n';
    res.writeHead(405, { ...HEADERS, allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' }).end(body);
    return { status: 405, path: 'status', bytes: body.length };
  }
  const s = await snapshot();
  const body = Buffer.from(format === 'json' ? JSON.stringify(s, null, 2) + '\n' : renderStatusPage(s));
  res.writeHead(200, {
    ...HEADERS,
    'content-type': format === 'json' ? 'application/json; charset=utf-8' : 'text/html; charset=utf-8',
    'content-length': body.length,
  });
  const sent = req.method === 'HEAD' ? 0 : body.length;
  res.end(req.method === 'HEAD' ? undefined : body);
  return { status: 200, path: 'status', bytes: sent, length: sent };
}
