// The proxy's access log: one line per request once its answer is over,
// saying which way it went and how many bytes came from each source, as
// text (the default) or, with --log-format json, one JSON object with the
// same fields named, plus the client's address and user agent.
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { Outcome } from './handle.js';

/** One request's line, in either format. */
export interface ProxyAccess {
  client: string | undefined;
  agent: string | undefined;
  method: string;
  url: string;
  status: number;
  /** The answer did not reach its end (the text status carries '!', as in serve's access log). */
  cut: boolean;
  /** bittorrent, store, direct(why), tunnel, refused */
  route: string;
  bytes: number;
  ms: number;
  /** Bytes by source, when the route knows them; seeder, http and range are parts of mirror. */
  peers?: number;
  mirror?: number;
  store?: number;
  seeder?: number;
  http?: Record<string, number>;
  range?: number;
  connections?: number;
  seeders?: number;
  fallback?: string;
}

export function accessEntry(req: IncomingMessage, url: string, o: Outcome, ms: number, cut: boolean): ProxyAccess {
  const e: ProxyAccess = {
    client: req.socket.remoteAddress,
    agent: req.headers['user-agent'],
    method: req.method ?? '-',
    url,
    status: o.status,
    cut,
    route: o.path,
    bytes: o.bytes,
    ms,
  };
  if (o.from) {
    e.peers = o.from.peers;
    e.mirror = o.from.mirror;
    e.store = o.from.store;
    if (o.from.seeder) e.seeder = o.from.seeder;
    const http = Object.entries(o.from.http ?? {}).filter((kv): kv is [string, number] => !!kv[1]);
    if (http.length) e.http = Object.fromEntries(http);
  }
  if (o.sent?.mirrorBytes) e.range = o.sent.mirrorBytes;
  if (o.peers) {
    e.connections = o.peers.connections;
    e.seeders = o.peers.seeders;
  }
  if (o.sent?.fallback) e.fallback = o.sent.fallback;
  return e;
}

/**
 * The text line: time, client, method, URL, status, route, then named
 * figures. Spaces and quotes are squeezed out of the fallback's reason so a
 * line splits on spaces.
 */
export function textLine(e: ProxyAccess, now = new Date()): string {
  const parts = [now.toISOString(), e.client ?? '-', e.method, e.url, `${e.status}${e.cut ? '!' : ''}`, e.route, `bytes=${e.bytes}`, `${e.ms}ms`];
  if (e.mirror !== undefined) parts.push(`peers=${e.peers}`, `mirror=${e.mirror}`, `store=${e.store}`);
  if (e.seeder) parts.push(`seeder=${e.seeder}`);
  if (e.http) parts.push(`http=${Object.entries(e.http).map(([why, n]) => `${why}:${n}`).join(',')}`);
  if (e.range) parts.push(`range=${e.range}`);
  if (e.connections !== undefined) parts.push(`connections=${e.connections}`, `seeders=${e.seeders}`);
  if (e.fallback) parts.push(`fallback="${e.fallback.replace(/["\s]+/g, ' ')}"`);
  return parts.join(' ') + '\n';
}

/**
 * Where each entry goes: `write` as text lines stamped `at` (the proxy's
 * clock, injected in tests), or as JSON objects through `json` (pino's own
 * time).
 */
export function proxyAccessLog(write: (line: string) => void, json: Logger | null): (e: ProxyAccess, at: number) => void {
  return json ? (e) => json.info(e, 'access') : (e, at) => write(textLine(e, new Date(at)));
}
