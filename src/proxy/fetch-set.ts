// `pkgtorrent fetch`: the client side of digest mode. For each mirror
// prefix: sorted paths, digest = SHA-1 of them joined by "\n", GET
// <base>/<prefix>/<service>/digest/<digest>; on 412 POST the paths as `p`
// fields; the torrent then downloads through aria2 (web seed: the mirror)
// into a temporary directory, and each finished file is renamed into
// place. Any file BitTorrent does not deliver comes over plain HTTP.
import bencode from 'bencode';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Aria2Engine } from '../core/aria2.js';
import { PkgError, usageError } from '../core/errors.js';
import { sha1 } from '../core/metainfo.js';
import { send } from './upstream.js';

export interface FetchOptions {
  base: string;
  outDir: string;
  paths: string[];
  serviceName: string;
  stallMs: number;
  aria2c: string;
  btPort: string;
  log: (line: string) => void;
}

export interface FetchResult {
  path: string;
  how: 'bittorrent' | 'direct' | 'failed';
  bytes: number;
  error?: string;
}

/** Paths grouped by first segment (one torrent each), each group sorted as the digest wants. */
export function groupPaths(paths: readonly string[]): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const p of paths) {
    const m = /^\/([^/]+)\/./.exec(p);
    if (!m || p.split('/').some((s) => s === '..' || s === '.')) throw usageError(`invalid path '${p}': expected /<prefix>/<file> under the mirror`);
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

/** Torrent file index (1-based, as aria2's select-file) for each requested path; padding is left out. */
export function filesOf(torrent: Buffer, prefix: string): Map<string, number> {
  const t = bencode.decode(torrent) as { info?: { name?: Uint8Array; files?: Array<{ path: Uint8Array[]; attr?: Uint8Array }> } };
  const text = (b: Uint8Array) => Buffer.from(b).toString('utf8');
  const out = new Map<string, number>();
  if (!t.info?.files || !t.info.name || text(t.info.name) !== prefix) return out;
  t.info.files.forEach((f, i) => {
    if (f.attr && text(f.attr).includes('p')) return;
    out.set('/' + [prefix, ...f.path.map(text)].join('/'), i + 1);
  });
  return out;
}

function decoded(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    throw usageError(`invalid path '${p}': malformed percent-encoding`);
  }
}

async function overBitTorrent(o: FetchOptions, engine: Aria2Engine, torrent: Buffer, index: Map<string, number>, tmp: string, want: string[]): Promise<Set<string>> {
  const selected = want.filter((p) => index.has(decoded(p)));
  const done = new Set<string>();
  if (selected.length === 0) return done;
  const gid = await engine.addTorrent(torrent, [], { dir: tmp, 'select-file': selected.map((p) => index.get(decoded(p))).join(','), 'seed-time': '0' });
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const s = await engine.tellStatus(gid);
    const files = await engine.call<Array<{ index: string; length: string; completedLength: string }>>('aria2.getFiles', gid);
    const complete = new Set(files.filter((f) => f.length === f.completedLength).map((f) => Number(f.index)));
    for (const p of selected) if (complete.has(index.get(decoded(p))!)) done.add(p);
    if (done.size === selected.length || s.status === 'error' || s.status === 'removed') break;
    if (s.completedLength !== last) [last, lastChange] = [s.completedLength, Date.now()];
    else if (Date.now() - lastChange > o.stallMs) {
      o.log(`BitTorrent stalled for ${o.stallMs} ms: the rest over HTTP`);
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await engine.remove(gid);
  return done;
}

async function direct(base: string, path: string, dest: string): Promise<number> {
  const up = send(new URL(base + path), 'GET', {}, 60_000);
  const res = await up.response;
  if (res.statusCode !== 200) {
    res.resume();
    throw new PkgError('io', `${path}: the mirror answered ${res.statusCode}`);
  }
  const tmp = `${dest}.pkgtorrent-part`;
  await mkdir(dirname(dest), { recursive: true });
  let n = 0;
  res.on('data', (c: Buffer) => (n += c.length));
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

export async function fetchSet(o: FetchOptions): Promise<FetchResult[]> {
  const groups = groupPaths(o.paths);
  await mkdir(o.outDir, { recursive: true });
  const tmp = await mkdtemp(join(o.outDir, '.pkgtorrent-fetch-'));
  const results: FetchResult[] = [];
  let engine: Aria2Engine | null = null;
  try {
    for (const [prefix, paths] of groups) {
      const { torrent, why } = await digestTorrent(o.base, prefix, o.serviceName, paths);
      let done = new Set<string>();
      if (torrent) {
        try {
          engine ??= await Aria2Engine.start({ dir: tmp, aria2c: o.aria2c, listenPort: o.btPort, seedTimeMinutes: 0, log: o.log });
          done = await overBitTorrent(o, engine, torrent, filesOf(torrent, prefix), tmp, paths);
        } catch (err) {
          o.log(`BitTorrent failed (${(err as Error).message}): over HTTP`);
        }
      } else o.log(`no torrent for /${prefix} (${why}): over HTTP`);
      for (const p of paths) {
        const dest = join(o.outDir, decoded(p));
        if (done.has(p)) {
          await mkdir(dirname(dest), { recursive: true });
          await rename(join(tmp, decoded(p)), dest);
          results.push({ path: p, how: 'bittorrent', bytes: (await stat(dest)).size });
          continue;
        }
        try {
          results.push({ path: p, how: 'direct', bytes: await direct(o.base, p, dest) });
        } catch (err) {
          results.push({ path: p, how: 'failed', bytes: 0, error: (err as Error).message });
        }
      }
    }
  } finally {
    await engine?.close();
    await rm(tmp, { recursive: true, force: true });
  }
  return results;
}
