// The info cache under load: one build per digest across concurrent requests
// and across processes, bounded waits, stale locks, damaged entries, tracker
// reloads, graceful stop and a cluster of workers.
import t, { type Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { decodeTorrent } from './helpers/bencode.js';
import { digestOf, postPaths, request, startServe, type ServeProcess } from './helpers/server.js';

const FILES = Array.from({ length: 8 }, (_, i) => `/pub/p/pkg-${i}.rpm`);

function mirror(t: Test) {
  const pkgs = Object.fromEntries(FILES.map((p, i) => [p.split('/').pop()!, randomBytes(40_000 + i * 1000)]));
  return t.testdir({ root: { pub: { p: pkgs } }, cache: {} });
}

const builds = (s: ServeProcess) => [...s.stderr().matchAll(/built ([0-9a-f_]+): (\d+) files?, (\d+) hashed/g)].map((m) => ({ key: m[1]!, files: Number(m[2]), hashed: Number(m[3]) }));

/** Every file under dir, recursively, as paths relative to it. */
function walk(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`],
  );
}

t.test('50 concurrent cold POSTs: each file hashed once, identical answers', async (t) => {
  const dir = mirror(t);
  const srv = await startServe(t, { root: join(dir, 'root'), cacheDir: join(dir, 'cache') });
  const digest = digestOf(FILES);
  const answers = await Promise.all(Array.from({ length: 50 }, () => postPaths(srv.url, 'pub', FILES, digest)));
  t.same([...new Set(answers.map((r) => r.status))], [200]);
  t.equal(new Set(answers.map((r) => r.body.toString('hex'))).size, 1, 'identical bytes');
  t.same(builds(srv), [{ key: digest, files: FILES.length, hashed: FILES.length }], 'one build that hashed every file once');
  const entries = walk(join(dir, 'cache'));
  t.same(entries.sort(), [`info/${digest}`, ...FILES.map((f) => `pieces${f}/16384`)].sort(), 'one entry each, no temp files or locks left');
});

t.test('two serve processes on one cache dir build a digest once', async (t) => {
  const dir = mirror(t);
  const opts = { root: join(dir, 'root'), cacheDir: join(dir, 'cache') };
  const [a, b] = await Promise.all([startServe(t, opts), startServe(t, opts)]);
  const digest = digestOf(FILES);
  const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => postPaths(i % 2 ? a.url : b.url, 'pub', FILES, digest)));
  t.same([...new Set(answers.map((r) => r.status))], [200]);
  // The web seed host differs per server; the info dictionary must not.
  const infos = new Set(answers.map((r) => JSON.stringify(decodeTorrent(r.body).info, (_k, v) => (v?.type === 'Buffer' ? Buffer.from(v.data).toString('hex') : v))));
  t.equal(infos.size, 1, 'one info dictionary');
  const all = [...builds(a), ...builds(b)];
  t.equal(all.length, 1, 'one build across both processes');
  t.equal(all[0]!.hashed, FILES.length);
  // Built by one, served from the cache by the other.
  t.equal((await request(a.url, `/pub/torrent_service/digest/${digest}`)).status, 200);
  t.equal((await request(b.url, `/pub/torrent_service/digest/${digest}`)).status, 200);
});

t.test('locks: a live builder elsewhere is waited for, boundedly; a dead one is taken over', async (t) => {
  const dir = mirror(t);
  const srv = await startServe(t, { root: join(dir, 'root'), cacheDir: join(dir, 'cache'), args: ['--request-timeout', '1s'] });
  const paths = FILES.slice(0, 2);
  const digest = digestOf(paths);
  const lock = join(dir, 'cache/info', `${digest}.lock`);
  mkdirSync(join(dir, 'cache/info'), { recursive: true });
  // A live holder: this test process, refreshed just now.
  writeFileSync(lock, JSON.stringify({ pid: process.pid, host: hostname(), token: 'x' }));
  const started = Date.now();
  const busy = await postPaths(srv.url, 'pub', paths, digest);
  t.equal(busy.status, 503, 'gives up after the bounded wait');
  t.equal(busy.headers['retry-after'], '5');
  t.ok(Date.now() - started < 5000, 'bounded by the request timeout');

  // The same lock, its holder gone: taken over at once.
  writeFileSync(lock, JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), token: 'y' }));
  t.equal((await postPaths(srv.url, 'pub', paths, digest)).status, 200, 'dead holder on this host');
  // A lock not refreshed for a long time, from another host.
  const d2 = digestOf(FILES.slice(2, 4));
  const lock2 = join(dir, 'cache/info', `${d2}.lock`);
  writeFileSync(lock2, JSON.stringify({ pid: 1, host: 'elsewhere', token: 'z' }));
  const old = new Date(Date.now() - 3600_000);
  utimesSync(lock2, old, old);
  t.equal((await postPaths(srv.url, 'pub', FILES.slice(2, 4), d2)).status, 200, 'stale lock');
  t.same(readdirSync(join(dir, 'cache/info')).filter((n) => n.includes('lock')), [], 'no lock left behind');
});

t.test('a damaged or interrupted entry is never served', async (t) => {
  const dir = mirror(t);
  const srv = await startServe(t, { root: join(dir, 'root'), cacheDir: join(dir, 'cache') });
  const digest = digestOf(FILES);
  const url = `/pub/torrent_service/digest/${digest}`;
  const good = await postPaths(srv.url, 'pub', FILES, digest);
  t.equal(good.status, 200);
  const entry = join(dir, 'cache/info', digest);
  const bytes = readFileSync(entry);
  // A second process reading the disk copy: the first one has it in memory, so use a new server.
  await srv.stop();
  const damaged: Array<[string, Buffer]> = [
    ['truncated', bytes.subarray(0, bytes.length - 30)],
    ['one bit flipped', Buffer.from(bytes.map((b, i) => (i === 100 ? b ^ 1 : b)))],
    ['another format version', Buffer.concat([bytes.subarray(0, 8), Buffer.from([0, 99]), bytes.subarray(10)])],
    ['empty', Buffer.alloc(0)],
  ];
  for (const [name, data] of damaged) {
    writeFileSync(entry, data);
    const s2 = await startServe(t, { root: join(dir, 'root'), cacheDir: join(dir, 'cache') });
    t.equal((await request(s2.url, url)).status, 412, name);
    await s2.stop();
  }
  // A temp file of an interrupted write next to a good entry changes nothing.
  writeFileSync(entry, bytes);
  writeFileSync(join(dir, 'cache/info', `.${digest}.pkgtorrent-tmp-1-abc`), bytes.subarray(0, 10));
  const s3 = await startServe(t, { root: join(dir, 'root'), cacheDir: join(dir, 'cache') });
  const hit = await request(s3.url, url);
  t.equal(hit.status, 200);
  t.same(decodeTorrent(hit.body).info, decodeTorrent(good.body).info);
  t.same(builds(s3), [], 'served without a build');
});

t.test('an edited trackers file shows in the next torrents', async (t) => {
  const dir = mirror(t);
  const trackers = join(dir, 'trackers');
  writeFileSync(trackers, 'http://old.example/announce\n');
  const srv = await startServe(t, { root: join(dir, 'root'), cacheDir: join(dir, 'cache'), trackers, args: ['--trackers-interval', '0.2s'] });
  const url = '/pub/torrent_service/simple/pub/p/pkg-1.rpm';
  const before = decodeTorrent((await request(srv.url, url)).body);
  t.equal(before.announce, 'http://old.example/announce');
  writeFileSync(trackers, 'http://new1.example/announce\nhttp://new2.example/announce\n');
  const later = new Date(Date.now() + 5000);
  utimesSync(trackers, later, later);
  await new Promise((r) => setTimeout(r, 400));
  const after = decodeTorrent((await request(srv.url, url)).body);
  t.same(after['announce-list'].flat().sort(), ['http://new1.example/announce', 'http://new2.example/announce']);
  t.equal(after.announce, after['announce-list'][0][0]);
  t.same(after.info, before.info, 'the info dictionary does not depend on trackers');
});

t.test('SIGTERM: in-flight requests finish, the process exits 0, nothing half-written stays', async (t) => {
  const dir = t.testdir({ root: { iso: { 'big.iso': randomBytes(64 * 1024 * 1024) } }, cache: {} });
  const srv = await startServe(t, { root: join(dir, 'root'), cacheDir: join(dir, 'cache'), pieceLength: '1M' });
  const pending = request(srv.url, '/pub/torrent_service/simple/iso/big.iso');
  // The build lock exists while the torrent is being built: stop then.
  const lock = join(dir, 'cache/info', `${createHash('sha1').update('/iso/big.iso').digest('hex')}_s.lock`);
  let building = false;
  for (let i = 0; i < 2000 && !building; i++) {
    building = existsSync(lock);
    if (!building) await new Promise((r) => setTimeout(r, 1));
  }
  t.ok(building, 'SIGTERM is sent while the build is under way');
  const exit = srv.stop('SIGTERM');
  const r = await pending;
  t.equal(r.status, 200, 'the request under way was answered');
  t.same(await exit, { code: 0, signal: null });
  t.notOk(walk(join(dir, 'cache')).some((n) => n.includes('tmp') || n.endsWith('.lock')), 'no temp or lock files');
  t.ok(statSync(join(dir, 'cache/info')).isDirectory());
});

t.test('--workers 2 shares one port and stops cleanly', async (t) => {
  const dir = mirror(t);
  const srv = await startServe(t, { root: join(dir, 'root'), cacheDir: join(dir, 'cache'), args: ['--workers', '2'] });
  t.match(srv.stderr(), /serving http:\/\/127\.0\.0\.1:\d+\/ \(root .*, 2 workers\)/);
  const digest = digestOf(FILES);
  const answers = await Promise.all(Array.from({ length: 10 }, () => postPaths(srv.url, 'pub', FILES, digest)));
  t.same([...new Set(answers.map((r) => r.status))], [200]);
  t.equal(builds(srv).length, 1, 'one build across the workers');
  t.same(await srv.stop(), { code: 0, signal: null });
});
