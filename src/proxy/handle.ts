// One proxied request: which way it goes (BitTorrent, the store, or
// straight to the mirror) and one access-log line saying which, with the
// bytes of each source.
//
// A package (by name) from a mirror that may run the service is looked up
// first, before anything is asked of the mirror itself: the service's
// torrent says the package's length, so a package that goes through
// BitTorrent or the store costs the mirror no byte of the file. Everything
// else is one request to the mirror, relayed as it comes.
import type { IncomingMessage, ServerResponse } from 'node:http';
import mime from 'mime-types';
import { answerFromDownload, answerFromFile, type Sent } from './answer.js';
import type { Sources } from './download.js';
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
  /** Peers can be found without a tracker (LPD or DHT on). */
  discovery: boolean;
  /** Told once per mirror host whose torrents can never find a peer. */
  warn: (line: string) => void;
  /** The hosts told of so far (one proxy's, not the module's). */
  warned: Set<string>;
}

/** Bytes of one answer by where they came from (the mirror: HTTP, Range fallback and its seeder). */
export interface BytesBySource {
  peers: number;
  mirror: number;
  store: number;
  /** Of `mirror`: what the mirror's BitTorrent seeder sent. */
  seeder: number;
  /** Of `mirror`: its HTTP pieces by why they were asked for (alone, gaps, stalled). */
  http?: Partial<Record<string, number>>;
}

export interface Outcome {
  status: number;
  /** bittorrent, store, direct (with why) */
  path: string;
  bytes: number;
  /** The body's declared length, when known: fewer bytes sent means the answer was cut. */
  length?: number;
  sent?: Sent;
  from?: BytesBySource;
  peers?: { connections: number; seeders: number };
}

const UPSTREAM_TIMEOUT_MS = 60_000;

/** Headers of the mirror's answer that describe the file, for an answer the proxy builds itself. */
function fileHeaders(name: string) {
  return { 'content-type': mime.lookup(name) || 'application/octet-stream' };
}

export async function handle(req: IncomingMessage, res: ServerResponse, url: URL, r: Route): Promise<Outcome> {
  const plain = req.method !== 'GET' || req.headers.range !== undefined || !r.isPackage(url.pathname);
  if (plain || r.lookup.knownWithoutService(url)) return direct(req, res, url, plain ? '' : 'no service');
  let name: string;
  try {
    name = decodeURIComponent(url.pathname.slice(url.pathname.lastIndexOf('/') + 1));
  } catch {
    return direct(req, res, url, 'undecodable name');
  }
  const found = await r.lookup.find(url, name);
  if (!found.torrent) return direct(req, res, url, found.why);
  const t = found.torrent;
  if (t.length < r.minSize) return direct(req, res, url, 'small');

  const stored = await r.packages.store.lookup(t.infoHash, t.name, t.length);
  if (stored) {
    const bytes = await answerFromFile(res, stored, t.length, fileHeaders(name));
    return { status: 200, path: 'store', bytes, length: t.length, from: { peers: 0, mirror: 0, store: bytes, seeder: 0 } };
  }
  // A private torrent (BEP 27) takes peers from its trackers only: LPD and DHT find none for it.
  const discovery = r.discovery && !t.private;
  const peersPossible = t.trackers.length > 0 || discovery;
  if (!peersPossible && !r.warned.has(url.host)) {
    r.warned.add(url.host);
    r.warn(
      t.private
        ? `torrents from ${url.host} are private and name no tracker (LPD and DHT find no peers for them): its packages can only come from the mirror ` +
            `(list a tracker in the service's trackers file)`
        : `torrents from ${url.host} name no tracker and --lpd/--dht are off: its packages can only come from the mirror ` +
            `(list a tracker in the service's trackers file, or run the proxies with --lpd yes on a trusted LAN)`,
    );
  }
  let dl;
  try {
    dl = await r.packages.download(t, { url, peersPossible, trackersOnly: !discovery });
  } catch (err) {
    return direct(req, res, url, `engine: ${(err as Error).message}`);
  }
  if (!dl) return direct(req, res, url, 'larger than the store');
  const sent = await answerFromDownload(res, dl, fileHeaders(name), url, r.stallMs);
  // Whole from the download: its last bytes went out once it was complete;
  // its counts are final once its last requests to the mirror ended too.
  // (After a fallback the download may go on for a while: the counts so far.)
  if (!sent.fallback && sent.torrentBytes === t.length) await dl.done;
  const s: Sources = dl.sources;
  return {
    status: 200,
    path: 'bittorrent',
    bytes: sent.torrentBytes + sent.mirrorBytes,
    length: t.length,
    sent,
    from: { peers: s.peers, mirror: s.mirrorSeeder + s.mirrorHttp + sent.mirrorBytes, store: 0, seeder: s.mirrorSeeder, http: s.httpBy },
    peers: dl.peak,
  };
}

/** The request as it is, to the mirror, and its answer relayed. */
async function direct(req: IncomingMessage, res: ServerResponse, url: URL, why: string): Promise<Outcome> {
  const headers = { ...endToEnd(req.headers), host: url.host };
  const up = send(url, req.method!, headers, UPSTREAM_TIMEOUT_MS, req.method === 'GET' || req.method === 'HEAD' ? undefined : req);
  let upRes: IncomingMessage;
  try {
    upRes = await up.response;
  } catch (err) {
    return fail(res, 502, `mirror unreachable: ${(err as Error).message}`);
  }
  const bytes = await relay(upRes, res);
  const declared = Number(upRes.headers['content-length']);
  const length = req.method !== 'HEAD' && upRes.statusCode !== 304 && Number.isSafeInteger(declared) ? declared : undefined;
  return { status: upRes.statusCode ?? 502, path: why ? `direct(${why})` : 'direct', bytes, length, from: { peers: 0, mirror: bytes, store: 0, seeder: 0 } };
}

export function fail(res: ServerResponse, status: number, reason: string): Outcome {
  if (!res.headersSent) res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' }).end(reason + '\n');
  else res.destroy();
  return { status, path: 'refused', bytes: 0 };
}
