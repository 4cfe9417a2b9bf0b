// `pkgtorrent fetch`: the client side of digest mode. For each mirror
// prefix: sorted paths, digest = SHA-1 of them joined by "\n", GET
// <base>/<prefix>/<service>/digest/<digest>; on 412 POST the paths as `p`
// fields. The multi-file torrent then downloads through the engine
// (libtorrent) into a temporary directory, peers first, with the mirror's
// HTTP filling in what the swarm cannot give, piece by piece, as for the
// proxy (download.ts): in the service's layout every piece lies inside one
// file, so a piece is one Range request on that file, its padding zeros
// added here and never asked of the mirror. Each file whose pieces are all
// verified is renamed into place; any file BitTorrent does not deliver
// comes over plain HTTP. Every byte is counted by where it came from.
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { BtEngine } from '../core/bt-engine.js';
import { PkgError, usageError } from '../core/errors.js';
import { sha1 } from '../core/metainfo.js';
import { parsePorts } from '../core/setting-parsers.js';
import { PieceDownload } from './download.js';
import { parseSetTorrent } from './lookup.js';
import { serviceLayoutMap } from './mirror-pieces.js';
import { send } from './upstream.js';

export interface FetchOptions {
  base: string;
  outDir: string;
  paths: string[];
  serviceName: string;
  /** No byte from any source for this long: BitTorrent gives up, the rest comes over plain HTTP. */
  stallMs: number;
  /** The engine's ports: it listens on 0.0.0.0, the first free of them. */
  btPort: string;
  /** Every file over plain HTTP: no torrent asked for, no engine started. */
  httpOnly?: boolean;
  /** The engine program (default: bin/pkgtorrent-bt); tests name one that is missing. */
  engineProgram?: string;
  /** Several peers on one address (tests, all on 127.0.0.1). */
  btLoopback?: boolean;
  /** Requests to the mirror for pieces at once (default 4). */
  mirrorSlots?: number;
  /** Aborted (SIGINT, SIGTERM): the download stops, no further file is fetched, nothing temporary is left. */
  signal?: AbortSignal;
  log: (line: string) => void;
}

export interface FetchResult {
  path: string;
  how: 'bittorrent' | 'direct' | 'failed';
  bytes: number;
  error?: string;
}

/** Bytes of the whole run by where they came from, counted as they arrived. */
export interface FetchSources {
  /** Peers of the swarm. */
  peers: number;
  /** The mirror's BitTorrent seeder (serve --seed), told by its peer id. */
  seeder: number;
  /** The mirror's HTTP: pieces by Range and whole files. */
  http: number;
}

export interface FetchReport {
  files: FetchResult[];
  from: FetchSources;
}

/** Paths grouped by first segment (one torrent each), each group sorted as the digest wants. */
export function groupPaths(paths: readonly string[]): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const p of paths) {
    const m = /^\/([^/]+)\/./.exec(p);
    if (!m || p.split('/').some((s) => s === '..' || s === '.')) throw usageError(`invalid path '${p}': expected /<prefix>/<file> under the mirror`);
    decoded(p);
    groups.set(m[1]!, [...(groups.get(m[1]!) ?? []), p]);
  }
  for (const [k, v] of groups) groups.set(k, [...new Set(v)].sort());
  return groups;
}

export function digestOf(paths: readonly string[]): string {
  return sha1(paths.join('\n')).toString('hex');
}

async function call(url: URL, method: string, body?: string): Promise<{ status: number; body: Buffer }> {
  const headers = body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) };
  const up = send(url, method, headers, 60_000, body === undefined ? undefined : null);
  if (body !== undefined) up.request.end(body);
  const res = await up.response;
  const chunks: Buffer[] = [];
  for await (const c of res as AsyncIterable<Buffer>) chunks.push(c);
  return { status: res.statusCode ?? 0, body: Buffer.concat(chunks) };
}

/** The digest conversation; null when the service gives no torrent (the caller goes direct). */
export async function digestTorrent(base: string, prefix: string, serviceName: string, paths: string[]): Promise<{ torrent: Buffer | null; why: string }> {
  const url = new URL(`${base}/${prefix}/${serviceName}/digest/${digestOf(paths)}`);
  try {
    const got = await call(url, 'GET');
    if (got.status === 200) return { torrent: got.body, why: '' };
    if (got.status !== 412) return { torrent: null, why: `digest GET answered ${got.status}` };
    const form = paths.map((p) => `p=${encodeURIComponent(p)}`).join('&');
    const posted = await call(url, 'POST', form);
    if (posted.status === 200) return { torrent: posted.body, why: '' };
    return { torrent: null, why: `digest POST answered ${posted.status}: ${posted.body.toString('utf8').trim().slice(0, 200)}` };
  } catch (err) {
    return { torrent: null, why: (err as Error).message };
  }
}

function decoded(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    throw usageError(`invalid path '${p}': malformed percent-encoding`);
  }
}

/** The engine, or one error line saying what to install (or to go without it). */
async function startEngine(o: FetchOptions): Promise<BtEngine> {
  const ports = parsePorts(o.btPort);
  // What the engine says before it ever answered is in the error below.
  let started = false;
  try {
    const engine = await BtEngine.start({
      listen: `0.0.0.0:${ports.first}`,
      retryPorts: ports.last - ports.first,
      loopback: o.btLoopback,
      program: o.engineProgram,
      log: (line) => started && o.log(line),
    });
    started = true;
    return engine;
  } catch (err) {
    const why = (err as Error).message.replace(/ \((it needs|install) python3-libtorrent\)$/, '');
    throw new PkgError('io', `${why}; install python3-libtorrent (the package's name on Debian and Fedora), or fetch over plain HTTP with --http-only`);
  }
}

/**
 * One prefix's files over BitTorrent into `tmp`: the paths (as asked for)
 * whose every piece was verified, each with its file in `tmp` (null: an
 * empty file, which holds no piece). The others are left to plain HTTP.
 */
async function overBitTorrent(o: FetchOptions, engine: BtEngine, prefix: string, paths: string[], tmp: string, from: FetchSources): Promise<Map<string, string | null>> {
  const done = new Map<string, string | null>();
  const got = await digestTorrent(o.base, prefix, o.serviceName, paths);
  if (!got.torrent) {
    o.log(`no torrent for /${prefix} (${got.why}): over HTTP`);
    return done;
  }
  const set = parseSetTorrent(got.torrent, prefix);
  const map = set && serviceLayoutMap(set, o.base, tmp);
  if (!set || !map) {
    o.log(`the torrent for /${prefix} is not a multi-file torrent of the service's layout: over HTTP`);
    return done;
  }
  // The torrent's real files, in the map's order, by path: exactly the files asked for.
  const real = set.files.filter((f) => !f.pad).map((f) => '/' + [prefix, ...f.path].join('/'));
  const asked = new Map(paths.map((p) => [decoded(p), p]));
  const stray = real.find((p) => !asked.has(p));
  if (stray !== undefined || new Set(real).size !== real.length) {
    o.log(`the torrent for /${prefix} lists ${stray === undefined ? 'a file twice' : `${stray}, not asked for`}: over HTTP`);
    return done;
  }
  const dl = new PieceDownload(engine, set.infoHash, set.torrent, map, tmp, { peersPossible: set.trackers.length > 0, trackersOnly: true, mirrorSlots: o.mirrorSlots ?? 4 });
  try {
    await dl.start();
  } catch (err) {
    o.log(`BitTorrent failed for /${prefix} (${(err as Error).message}): over HTTP`);
    return done;
  }
  // A stall is no new byte from anyone (or only bytes of pieces that failed their check) for stallMs.
  let best = -1;
  let bestAt = Date.now();
  while (dl.state === 'running') {
    await Promise.race([dl.changed(), new Promise((r) => setTimeout(r, 100))]);
    if (o.signal?.aborted) dl.stop('interrupted');
    else if (dl.progress > best) [best, bestAt] = [dl.progress, Date.now()];
    else if (Date.now() - bestAt >= o.stallMs && dl.state === 'running') dl.stop(`stalled ${o.stallMs} ms`);
  }
  await dl.done;
  // Complete: the engine forgets it before its files move (a failed download it forgot already).
  await engine.remove(set.infoHash);
  from.peers += dl.sources.peers;
  from.seeder += dl.sources.mirrorSeeder;
  from.http += dl.sources.mirrorHttp;
  if (dl.state === 'failed') o.log(`BitTorrent stopped for /${prefix} (${dl.failure}): the rest over HTTP`);
  const whole = map.files.map(() => true);
  for (let i = 0; i < dl.pieceCount; i++) if (!dl.has(i)) whole[map.span(i).file] = false;
  real.forEach((p, k) => {
    if (whole[k]) done.set(asked.get(p)!, map.files[k]!.length === 0 ? null : map.files[k]!.path);
  });
  return done;
}

/** A file over plain HTTP; `count` gets every byte the mirror sends. */
async function direct(base: string, path: string, dest: string, count: (n: number) => void): Promise<number> {
  const up = send(new URL(base + path), 'GET', {}, 60_000);
  const res = await up.response;
  if (res.statusCode !== 200) {
    res.resume();
    throw new PkgError('io', `${path}: the mirror answered ${res.statusCode}`);
  }
  const tmp = `${dest}.pkgtorrent-part`;
  await mkdir(dirname(dest), { recursive: true });
  let n = 0;
  res.on('data', (c: Buffer) => {
    n += c.length;
    count(c.length);
  });
  try {
    await pipeline(res, createWriteStream(tmp));
    const expected = Number(res.headers['content-length']);
    if (Number.isSafeInteger(expected) && expected !== n) throw new PkgError('io', `${path}: got ${n} of ${expected} bytes`);
    await rename(tmp, dest);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err instanceof PkgError ? err : new PkgError('io', `${path}: ${(err as Error).message}`);
  }
  return n;
}

/** A verified file into place (`file` null: an empty one). */
async function place(file: string | null, dest: string): Promise<number> {
  await mkdir(dirname(dest), { recursive: true });
  if (file === null) await writeFile(dest, '');
  else await rename(file, dest);
  return (await stat(dest)).size;
}

export async function fetchSet(o: FetchOptions): Promise<FetchReport> {
  const groups = groupPaths(o.paths);
  // Before anything is asked of the mirror: without an engine, nothing goes over BitTorrent.
  const engine = o.httpOnly ? null : await startEngine(o);
  const from: FetchSources = { peers: 0, seeder: 0, http: 0 };
  const files: FetchResult[] = [];
  const interrupted = () => o.signal?.aborted === true;
  let tmp: string | null = null;
  try {
    await mkdir(o.outDir, { recursive: true });
    for (const [prefix, paths] of groups) {
      if (interrupted()) break;
      let done = new Map<string, string | null>();
      if (engine) {
        tmp ??= await mkdtemp(join(o.outDir, '.pkgtorrent-fetch-'));
        done = await overBitTorrent(o, engine, prefix, paths, tmp, from);
      }
      for (const p of paths) {
        if (interrupted()) break;
        const dest = join(o.outDir, decoded(p));
        const file = done.get(p);
        if (file !== undefined) {
          try {
            files.push({ path: p, how: 'bittorrent', bytes: await place(file, dest) });
            continue;
          } catch (err) {
            o.log(`${p}: ${(err as Error).message}: over HTTP`);
          }
        }
        try {
          files.push({ path: p, how: 'direct', bytes: await direct(o.base, p, dest, (n) => (from.http += n)) });
        } catch (err) {
          files.push({ path: p, how: 'failed', bytes: 0, error: (err as Error).message });
        }
      }
    }
  } finally {
    await engine?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
  if (interrupted()) throw new PkgError('io', 'interrupted');
  return { files, from };
}
