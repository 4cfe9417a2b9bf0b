// A cache that cannot be written (a read-only or full file system) never
// fails a request: the service builds in memory, answers the same torrent a
// healthy cache gives, logs the condition once, and again when it clears.
// The cache dir is a real tmpfs mounted here, remounted read-only or filled
// up, so the errors are the kernel's own (EROFS, ENOSPC).
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { openCacheDir } from '../src/core/cache-dir.js';
import { CacheWrites } from '../src/core/cache-writes.js';
import { MirrorRoot } from '../src/core/root.js';
import { tmpfs } from './helpers/tmpfs.js';
import { startServer, type RunningServer } from '../src/service/server.js';
import { digestOf, postPaths, request, startServe } from './helpers/server.js';

const FILES = Array.from({ length: 6 }, (_, i) => `/pub/p/pkg-${i}.rpm`);
const COLD = FILES.slice(0, 4);
const LATER = FILES.slice(2, 6);
const SIMPLE = `/pub/torrent_service/simple${FILES[5]}`;
// A fixed web-seed base, so torrents from different servers are byte-identical.
const BASE = 'http://mirror.example';

function mirror(t: Test): string {
  const pkgs = Object.fromEntries(FILES.map((p, i) => [p.split('/').pop()!, randomBytes(40_000 + i * 3000)]));
  return join(t.testdir({ root: { pub: { p: pkgs } }, healthy: {} }), 'root');
}

function remount(dir: string, mode: 'ro' | 'rw'): void {
  execFileSync('mount', ['-o', `remount,${mode}`, dir]);
}

/** Fills the file system at dir until it reports ENOSPC; returns the filler's path. */
function fill(dir: string): string {
  const path = join(dir, 'filler');
  const fd = openSync(path, 'w');
  const block = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, block);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  } finally {
    closeSync(fd);
  }
  return path;
}

/** The real service, in-process, with its operator log captured. */
async function serve(t: Test, root: string, cacheDir: string): Promise<{ srv: RunningServer; log: string[] }> {
  const log: string[] = [];
  const srv = await startServer({
    root: await MirrorRoot.open(root),
    cacheDir: await openCacheDir(cacheDir, false, {}, (m) => t.fail(m), { readOnlyOk: true }),
    trackersFile: join(root, '..', 'no-trackers-file'),
    trackersIntervalMs: 60_000,
    pieceLength: 16384,
    serviceName: 'torrent_service',
    host: '127.0.0.1',
    port: 0,
    baseUrl: BASE,
    trustProxy: false,
    files: false,
    jobs: 1,
    maxBody: 1 << 20,
    maxPaths: 5000,
    maxGlobMatches: 5000,
    queueLimit: 64,
    requestTimeoutMs: 30_000,
    revalidateMs: 0,
    // Every write is tried, so "logged once" rests on the state alone, not on skipped writes.
    cacheRetryMs: 0,
    log: (line) => log.push(line),
    accessLog: () => {},
  });
  t.teardown(() => srv.close());
  return { srv, log };
}

/** The torrents a healthy cache gives for the requests of these tests. */
async function reference(t: Test, root: string): Promise<{ cold: Buffer; later: Buffer; simple: Buffer }> {
  const { srv, log } = await serve(t, root, join(root, '..', 'healthy'));
  const cold = await postPaths(srv.url, 'pub', COLD, digestOf(COLD));
  const later = await postPaths(srv.url, 'pub', LATER, digestOf(LATER));
  const simple = await request(srv.url, SIMPLE);
  t.same([cold.status, later.status, simple.status], [200, 200, 200], 'the healthy cache answers');
  t.notOk(log.some((l) => /cache dir|cache entry/.test(l)), 'and reports no cache condition');
  await srv.close();
  return { cold: cold.body, later: later.body, simple: simple.body };
}

const builds = (log: string[], key: string) => log.filter((l) => l.startsWith(`built ${key}:`)).length;
const unwritable = (log: string[]) => log.filter((l) => /cache dir .* cannot be written/.test(l));
const resumed = (log: string[]) => log.filter((l) => /cache dir .* can be written again/.test(l));

/** Every file under dir, recursively, relative to it. */
function walk(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`],
  );
}

/**
 * The requests of the issue: 20 concurrent cold POSTs of one digest and 5
 * simple-mode GETs, all answered with the healthy cache's torrent, built
 * once, with one log line naming `code`.
 */
async function coldRequests(t: Test, srv: RunningServer, log: string[], ref: { cold: Buffer; simple: Buffer }, code: string) {
  const digest = digestOf(COLD);
  const posts = await Promise.all(Array.from({ length: 20 }, () => postPaths(srv.url, 'pub', COLD, digest)));
  t.same([...new Set(posts.map((r) => r.status))], [200], '20 cold POSTs answer 200');
  t.ok(posts.every((r) => r.body.equals(ref.cold)), 'each with the torrent a healthy cache gives');
  t.equal(builds(log, digest), 1, 'concurrent identical requests share one build');
  for (let i = 0; i < 5; i++) {
    const r = await request(srv.url, SIMPLE);
    t.equal(r.status, 200, `simple/ GET ${i + 1} answers 200`);
    t.ok(r.body.equals(ref.simple), 'with the healthy torrent');
  }
  const lines = unwritable(log);
  t.equal(lines.length, 1, 'the condition is logged once, not per request');
  t.match(lines[0], code, `naming ${code}`);
}

/** After the condition cleared: the next build is cached, and that is logged once. */
async function cleared(t: Test, srv: RunningServer, log: string[], ref: { later: Buffer }, cacheDir: string) {
  const digest = digestOf(LATER);
  const r = await postPaths(srv.url, 'pub', LATER, digest);
  t.equal(r.status, 200, 'a cold POST after the condition cleared answers 200');
  t.ok(r.body.equals(ref.later), 'the torrent a healthy cache gives');
  t.equal(resumed(log).length, 1, 'the end of the condition is logged once');
  t.ok(existsSync(join(cacheDir, 'info', digest)), 'and the entry is cached again');
  t.equal(unwritable(log).length, 1, 'with no new complaint');
}

t.test('a read-only cache file system: answered from memory, logged once, and again when writable', async (t) => {
  const root = mirror(t);
  const ref = await reference(t, root);
  const cache = tmpfs(t, '16m');
  if (!cache) return;
  const { srv, log } = await serve(t, root, cache);
  remount(cache, 'ro');
  await coldRequests(t, srv, log, ref, 'EROFS');
  t.same(walk(cache), [], 'nothing was written');
  remount(cache, 'rw');
  await cleared(t, srv, log, ref, cache);
});

t.test('a full cache file system: answered from memory, logged once, no leftovers, and again when space returns', async (t) => {
  const root = mirror(t);
  const ref = await reference(t, root);
  const cache = tmpfs(t, '1m');
  if (!cache) return;
  const { srv, log } = await serve(t, root, cache);
  const filler = fill(cache);
  await coldRequests(t, srv, log, ref, 'ENOSPC');
  t.same(
    walk(cache).filter((f) => f !== 'filler'),
    [],
    'no entry, lock or temp file is left from the failed writes',
  );
  rmSync(filler);
  await cleared(t, srv, log, ref, cache);
});

t.test('serve starts on a read-only populated cache, answers its hits, builds the rest in memory, warns once', async (t) => {
  const root = mirror(t);
  const cache = tmpfs(t, '16m');
  if (!cache) return;
  const opts = { root, cacheDir: cache, args: ['--base-url', BASE] };
  const digest = digestOf(COLD);
  const first = await startServe(t, opts);
  const built = await postPaths(first.url, 'pub', COLD, digest);
  t.equal(built.status, 200, 'populated by a writable run');
  await first.stop();
  remount(cache, 'ro');

  const srv = await startServe(t, opts);
  t.match(srv.stderr(), /cannot be written \(EROFS/, 'says at startup that the cache is read-only');
  const hit = await request(srv.url, `/pub/torrent_service/digest/${digest}`);
  t.equal(hit.status, 200, 'a cached digest is answered');
  t.ok(hit.body.equals(built.body), 'with the cached torrent');
  const other = digestOf(LATER);
  t.equal((await postPaths(srv.url, 'pub', LATER, other)).status, 200, 'a miss is built in memory');
  t.match(srv.stderr(), new RegExp(`built ${other}:`), 'really built, not found');
  t.notMatch(srv.stderr(), new RegExp(`built ${digest}:`), 'the hit was not rebuilt');
  t.equal(srv.stderr().match(/cannot be written/g)?.length, 1, 'warned once');
  await srv.stop();
});

t.test('CacheWrites: skips writes while unavailable, tries again after retryMs, other errors are per entry', async (t) => {
  let now = 1000;
  const log: string[] = [];
  const w = new CacheWrites('/c', (l) => log.push(l), { retryMs: 5000, now: () => now });
  const erofs = () => {
    throw Object.assign(new Error("EROFS: read-only file system, open '/c/x'"), { code: 'EROFS' });
  };
  let writes = 0;
  const ok = () => ++writes;
  t.equal(w.attempt('a', erofs), undefined, 'a failed write gives undefined, never throws');
  t.notOk(w.available);
  t.equal(w.attempt('b', ok), undefined, 'within retryMs a write is skipped');
  t.equal(writes, 0, 'and not run');
  now += 5000;
  t.equal(w.attempt('c', erofs), undefined, 'after retryMs it is tried (and fails again)');
  now += 5000;
  t.equal(w.attempt('lock', ok, false), 1, 'a write that does not count as recovery runs');
  t.notOk(w.available, 'but the cache is still unavailable');
  now += 5000;
  t.equal(w.attempt('d', ok), 2, 'a real write succeeds');
  t.ok(w.available);
  t.same(log, ['cache dir /c cannot be written (EROFS: read-only file system): answering without caching until it can', 'cache dir /c can be written again: caching resumed']);
  const odd = () => {
    throw Object.assign(new Error('ENAMETOOLONG: name too long'), { code: 'ENAMETOOLONG' });
  };
  t.equal(w.attempt('pub/x.rpm', odd), undefined, 'an error about one entry is not a request failure either');
  t.ok(w.available, 'and does not make the cache unavailable');
  t.match(log[2], /^pub\/x\.rpm: cannot write cache entry: ENAMETOOLONG/);
});

t.test('CacheWrites: a dir found unwritable when opened starts unavailable, said once; other errors do not count', async (t) => {
  const log: string[] = [];
  const erofs = Object.assign(new Error("EROFS: read-only file system, access '/c'"), { code: 'EROFS' });
  const w = new CacheWrites('/c', (l) => log.push(l), { retryMs: 5000, now: () => 1000, unwritable: erofs });
  t.notOk(w.available, 'unavailable from the start');
  t.equal(w.attempt('a', () => t.fail('a write was run')), undefined, 'and its first write is skipped');
  t.same(log, ['cache dir /c cannot be written (EROFS: read-only file system): answering without caching until it can']);
  const odd = Object.assign(new Error('ELOOP: too many symbolic links'), { code: 'ELOOP' });
  t.ok(new CacheWrites('/c', (l) => t.fail(l), { unwritable: odd }).available, 'an error that is not about writing the dir');
});

t.test('openCacheDir: a read-only dir is kept only for a caller that can use it, the default one only when populated', async (t) => {
  const ro = tmpfs(t, '1m');
  if (!ro) return;
  const home = t.testdir({});
  const env = { HOME: home, XDG_CACHE_HOME: join(home, 'xdg') };
  const fallback = join(home, 'xdg', 'pkgtorrent');
  const warnings: string[] = [];
  const warn = (m: string) => warnings.push(m);
  remount(ro, 'ro');
  await t.rejects(openCacheDir(ro, false, env, warn), { message: /cannot be created or written/ }, 'make, hash, clean: an explicit read-only dir is an error');
  const kept = await openCacheDir(ro, false, env, warn, { readOnlyOk: true });
  t.equal(kept.dir, ro, 'serve: an explicit read-only dir is kept');
  t.equal(kept.unwritable?.code, 'EROFS', 'with why it cannot be written, for CacheWrites to start from');
  const fellBack = await openCacheDir(ro, true, env, warn, { readOnlyOk: true });
  t.equal(fellBack.dir, fallback, 'serve: the default dir, empty and read-only, falls back');
  t.equal(fellBack.unwritable, null, 'to a dir that can be written');
  t.match(warnings, [/is not writable; using/], 'saying so');
  remount(ro, 'rw');
  mkdirSync(join(ro, 'info'));
  t.same(await openCacheDir(ro, false, env, warn), { dir: ro, unwritable: null }, 'a writable dir is itself, and says so');
  remount(ro, 'ro');
  t.equal((await openCacheDir(ro, true, env, warn, { readOnlyOk: true })).dir, ro, 'serve: the default dir, populated and read-only, is kept');
  t.equal((await openCacheDir(ro, true, env, warn)).dir, fallback, 'make: the same dir falls back');
});
