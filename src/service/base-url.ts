// The scheme and host of web-seed URLs. A client's Host header ends up inside
// torrents, and a torrent may be kept by an HTTP cache in front of the mirror
// and handed to other clients, so the host is checked to be one that a URL
// can carry as it is, and the X-Forwarded-* headers (which any client can
// send) count only behind a trusted proxy.
//
// The rule is deliberately wide: every Host a browser or curl sends for a
// name that resolves must pass, including the underscores of docker-compose
// and other internal names (a 400 here makes yum-torrent fall back to plain
// HTTP without a word). What is refused is what could not sit in a URL's
// host unchanged: whitespace, control characters, URL delimiters, percent
// escapes, a port out of range, a name longer than DNS allows.
import type { IncomingMessage } from 'node:http';
import { isIPv6 } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { BoundedMap } from '../core/bounded-map.js';
import { PkgError } from '../core/errors.js';

/** Characters RFC 3986 allows in a host name without percent-encoding (letters already folded). */
const NAME_CHAR = /^[a-z0-9\-._~!$&'()*+,;=]$/;
/** Far above any valid host; keeps the checks below cheap on hostile input. */
const MAX_HEADER = 1024;
/** DNS limits: 253 characters for a name (one more for a trailing dot), 63 for a label. */
const MAX_NAME = 253;
const MAX_LABEL = 63;

export type HostCheck = { ok: true; host: string } | { ok: false; why: string };

/** A part of the value for an error message, cut short: it comes from the client. */
function cut(s: string): string {
  return s.length > 64 ? `${s.slice(0, 61)}...` : s;
}

/** Names a character for an error message, printable or not. */
function shown(c: string): string {
  return c >= ' ' && c <= '~' ? `'${c}'` : `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

/**
 * Checks a Host (or X-Forwarded-Host) value and gives the host as it goes
 * into a `proto://host/` URL: lower case, IP addresses in their canonical
 * form, the scheme's default port and an empty port left out. Otherwise says
 * why it was refused, in words a client's operator can act on.
 */
export function checkHost(value: string, proto: 'http' | 'https'): HostCheck {
  const bad = (why: string): HostCheck => ({ ok: false, why });
  if (value === '') return bad('it is empty');
  if (value.length > MAX_HEADER) return bad(`it is longer than ${MAX_HEADER} characters`);
  const ws = /\s/.exec(value);
  if (ws) return bad(`it contains whitespace (${shown(ws[0])})`);
  const ctl = /[\x00-\x1f\x7f]/.exec(value);
  if (ctl) return bad(`it contains a control character (${shown(ctl[0])})`);
  if (/[^\x00-\x7f]/.test(value)) return bad('it contains non-ASCII characters (international names are sent as xn-- punycode)');
  const delim = /[/?#@\\%]/.exec(value);
  if (delim) return bad(`it contains ${shown(delim[0])}, which cannot be part of a URL's host`);

  const lower = value.toLowerCase();
  let name: string;
  let port: string | undefined;
  if (lower.startsWith('[')) {
    const m = /^\[([^\]]*)\](?::(.*))?$/.exec(lower);
    if (!m) return bad('an IPv6 address goes in brackets, followed only by an optional :port');
    if (!isIPv6(m[1]!)) return bad(`[${cut(m[1]!)}] is not an IPv6 address`);
    name = `[${m[1]}]`;
    port = m[2];
  } else {
    const colon = lower.lastIndexOf(':');
    name = colon < 0 ? lower : lower.slice(0, colon);
    port = colon < 0 ? undefined : lower.slice(colon + 1);
    if (name.includes(':')) return bad('an IPv6 address must be in brackets, as in [::1]:8080');
    if (name === '') return bad('the host name is empty');
    for (const c of name) if (!NAME_CHAR.test(c)) return bad(`it contains ${shown(c)}, which cannot be part of a URL's host`);
    if (name.length > MAX_NAME + (name.endsWith('.') ? 1 : 0)) return bad(`the host name is longer than ${MAX_NAME} characters`);
    const labels = (name.endsWith('.') ? name.slice(0, -1) : name).split('.');
    if (labels.some((l) => l === '')) return bad("the host name has an empty label ('..' or a leading or lone dot)");
    if (labels.some((l) => l.length > MAX_LABEL)) return bad(`a label of the host name is longer than ${MAX_LABEL} characters`);
  }
  if (port !== undefined && port !== '') {
    if (!/^\d+$/.test(port)) return bad(`the port '${cut(port)}' is not a number`);
    const n = Number(port);
    if (n < 1 || n > 65535) return bad(`the port ${cut(port)} is out of range (1 to 65535)`);
    port = String(n);
  }

  // The WHATWG URL parser has the last word: it is what clients use on the
  // web seed, and it refuses names that end like an IPv4 address but are not one.
  let url: URL;
  try {
    url = new URL(`${proto}://${name}${port ? `:${port}` : ''}/`);
  } catch {
    return bad(/(^|\.)(\d+|0x[0-9a-f]*)\.?$/.test(name) ? `${cut(name)} is not a valid IPv4 address` : `${cut(name)} is not a valid host name`);
  }
  return { ok: true, host: url.host };
}

export interface BaseUrlOptions {
  baseUrl?: string | undefined;
  trustProxy: boolean;
}

function firstValue(h: string | string[] | undefined): string | undefined {
  const v = Array.isArray(h) ? h[0] : h;
  return v?.split(',')[0]?.trim() || undefined;
}

/** The parts of a request the base URL depends on (an IncomingMessage has them). */
export type BaseUrlRequest = Pick<IncomingMessage, 'headers'> & { socket: Pick<TLSSocket, 'encrypted'> | object };

/** "http://mirror.example" (no trailing slash) for this request. */
export function baseUrlFor(req: BaseUrlRequest, opts: BaseUrlOptions): string {
  if (opts.baseUrl) return opts.baseUrl;
  let proto: 'http' | 'https' = (req.socket as Partial<TLSSocket>).encrypted ? 'https' : 'http';
  let host = req.headers.host;
  let header = 'Host';
  if (opts.trustProxy) {
    const fp = firstValue(req.headers['x-forwarded-proto'])?.toLowerCase();
    if (fp === 'http' || fp === 'https') proto = fp;
    else if (fp !== undefined) throw new PkgError('bad-request', 'invalid X-Forwarded-Proto header: expected http or https');
    const fh = firstValue(req.headers['x-forwarded-host']);
    if (fh !== undefined) [host, header] = [fh, 'X-Forwarded-Host'];
  }
  if (host === undefined) throw new PkgError('bad-request', 'missing Host header (or start serve with --base-url)');
  const checked = checkHostOnce(host, proto);
  if (!checked.ok) throw new PkgError('bad-request', `invalid ${header} header: ${checked.why}`);
  return checked.base;
}

/**
 * checkHost, remembered with the base URL it gives: a mirror is asked for by
 * a handful of names, and the check (a URL parse among others) is a visible
 * share of a cached GET. Bounded, so a client sending a new Host each time
 * costs only the check. One table per scheme, so the key is the header as sent.
 */
type Remembered = { ok: true; base: string } | { ok: false; why: string };
const checkedHosts = { http: new BoundedMap<string, Remembered>(256), https: new BoundedMap<string, Remembered>(256) };

function checkHostOnce(host: string, proto: 'http' | 'https'): Remembered {
  const seen = checkedHosts[proto];
  let c = seen.get(host);
  if (c === undefined) {
    const r = checkHost(host, proto);
    seen.set(host, (c = r.ok ? { ok: true, base: `${proto}://${r.host}` } : r));
  }
  return c;
}
