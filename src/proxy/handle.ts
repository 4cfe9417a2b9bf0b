// One proxied request: which way it goes (BitTorrent, the store, or
// straight to the mirror) and one access-log line saying which.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { answerFromDownload, answerFromFile, type Sent } from './answer.js';
import type { TorrentLookup } from './lookup.js';
import type { Packages } from './packages.js';
import type { NameMatcher } from './patterns.js';
import { endToEnd, relay, send } from './upstream.js';

export interface Route {
  isPackage: NameMatcher;
  minSize: number;
  stallMs: number;
  lookup: TorrentLookup;
  packages: Packages;
}

export interface Outcome {
  status: number;
  /** bittorrent, store, direct (with why) */
  path: string;
  bytes: number;
  sent?: Sent;
  peers?: { connections: number; seeders: number };
}

const UPSTREAM_TIMEOUT_MS = 60_000;

/** Headers of the mirror's answer that describe the file, for an answer the proxy builds itself. */
function fileHeaders(up: IncomingMessage) {
  const h = endToEnd(up.headers);
  delete h['content-length'];
  delete h['accept-ranges'];
  delete h['content-range'];
  return h;
}

export async function handle(req: IncomingMessage, res: ServerResponse, url: URL, r: Route): Promise<Outcome> {
  const headers = { ...endToEnd(req.headers), host: url.host };
  const plain = req.method !== 'GET' || req.headers.range !== undefined || !r.isPackage(url.pathname);
  const up = send(url, req.method!, headers, UPSTREAM_TIMEOUT_MS, req.method === 'GET' || req.method === 'HEAD' ? undefined : req);
  let upRes: IncomingMessage;
  try {
    upRes = await up.response;
  } catch (err) {
    return fail(res, 502, `mirror unreachable: ${(err as Error).message}`);
  }
  const direct = async (why: string): Promise<Outcome> => ({ status: upRes.statusCode ?? 502, path: why ? `direct(${why})` : 'direct', bytes: await relay(upRes, res) });
  if (plain) return direct('');
  const length = Number(upRes.headers['content-length']);
  if (upRes.statusCode !== 200 || !Number.isSafeInteger(length)) return direct('not a plain 200');
  if (upRes.headers['content-encoding']) return direct('encoded');
  if (length < r.minSize) return direct('small');
  if (r.lookup.knownWithoutService(url)) return direct('no service');

  // The mirror's answer waits, paused, while the torrent is looked up: if
  // anything goes wrong it is relayed as it is, at no extra cost.
  upRes.pause();
  let name: string;
  try {
    name = decodeURIComponent(url.pathname.slice(url.pathname.lastIndexOf('/') + 1));
  } catch {
    return direct('undecodable name');
  }
  const found = await r.lookup.find(url, name, length);
  if (!found.torrent) return direct(found.why);
  const t = found.torrent;

  const stored = await r.packages.store.lookup(t.infoHash, t.name, length);
  if (stored) {
    up.abort();
    const bytes = await answerFromFile(res, stored, length, fileHeaders(upRes));
    return { status: 200, path: 'store', bytes };
  }
  let dl;
  try {
    dl = await r.packages.download(t, url.href);
  } catch (err) {
    return direct(`engine: ${(err as Error).message}`);
  }
  if (!dl) return direct('larger than the store');
  up.abort();
  const sent = await answerFromDownload(res, dl, fileHeaders(upRes), url, r.stallMs);
  return { status: 200, path: 'bittorrent', bytes: sent.torrentBytes + sent.mirrorBytes, sent, peers: dl.peak };
}

export function fail(res: ServerResponse, status: number, reason: string): Outcome {
  if (!res.headersSent) res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' }).end(reason + '\n');
  else res.destroy();
  return { status, path: 'refused', bytes: 0 };
}
