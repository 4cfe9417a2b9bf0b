// The scheme and host of web-seed URLs. A client's Host header ends up inside
// torrents that other clients trust, so it is validated, and the X-Forwarded-*
// headers (which any client can send) count only behind a trusted proxy.
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { PkgError } from '../core/errors.js';

// A DNS name or IPv4 address, or a bracketed IPv6 address, with an optional port.
const HOST_RE = /^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.?|\[[0-9a-f:.]+\])(?::\d{1,5})?$/;

export function validHost(host: string): boolean {
  return host.length <= 260 && HOST_RE.test(host);
}

export interface BaseUrlOptions {
  baseUrl?: string | undefined;
  trustProxy: boolean;
}

function firstValue(h: string | string[] | undefined): string | undefined {
  const v = Array.isArray(h) ? h[0] : h;
  return v?.split(',')[0]?.trim() || undefined;
}

/** "http://mirror.example" (no trailing slash) for this request. */
export function baseUrlFor(req: IncomingMessage, opts: BaseUrlOptions): string {
  if (opts.baseUrl) return opts.baseUrl;
  let proto = (req.socket as TLSSocket).encrypted ? 'https' : 'http';
  let host = req.headers.host;
  if (opts.trustProxy) {
    const fp = firstValue(req.headers['x-forwarded-proto'])?.toLowerCase();
    if (fp === 'http' || fp === 'https') proto = fp;
    else if (fp !== undefined) throw new PkgError('bad-request', 'invalid X-Forwarded-Proto header');
    host = firstValue(req.headers['x-forwarded-host']) ?? host;
  }
  host = host?.toLowerCase();
  if (!host || !validHost(host)) throw new PkgError('bad-request', 'missing or invalid Host header');
  return `${proto}://${host}`;
}
