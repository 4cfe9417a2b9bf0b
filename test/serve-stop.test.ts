// Stopping the service while torrents are being built: a build that outlived
// its request, and a client still waiting when the grace period ends. Either
// is normal at a stop: no internal error in the log, a 503 with Retry-After
// for whoever still waits, no lock or temp file left. In-process, with the
// real server, pool and caches.
import t, { type Test } from 'tap';
import { existsSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { openCacheDir } from '../src/core/cache-dir.js';
import { PkgError } from '../src/core/errors.js';
import { HashPool } from '../src/core/hasher.js';
import { MirrorRoot } from '../src/core/root.js';
import { startServer, type RunningServer } from '../src/service/server.js';
import { request } from './helpers/server.js';
import { until } from './helpers/poll.js';

// Sparse: costs no disk, and one hash thread needs seconds for it, so the
// build is surely still under way when the test stops the server.
const BIG = 4 * 1024 ** 3;
const URL_PATH = '/pub/torrent_service/simple/big.iso';

async function serve(t: Test, requestTimeoutMs: number) {
  const dir = t.testdir({ root: {}, cache: {} });
  writeFileSync(join(dir, 'root/big.iso'), '');
  truncateSync(join(dir, 'root/big.iso'), BIG);
  const log: string[] = [];
  const srv: RunningServer = await startServer({
    root: await MirrorRoot.open(join(dir, 'root')),
    cacheDir: await openCacheDir(join(dir, 'cache'), false, {}, (m) => t.fail(m), { readOnlyOk: true }),
    trackersFile: join(dir, 'no-trackers'),
    trackersIntervalMs: 60_000,
    pieceLength: 1024 * 1024,
    serviceName: 'torrent_service',
    host: '127.0.0.1',
    port: 0,
    baseUrl: undefined,
    trustProxy: false,
    files: false,
    jobs: 1,
    maxBody: 1024 * 1024,
    maxPaths: 100,
    maxGlobMatches: 100,
    queueLimit: 8,
    requestTimeoutMs,
    revalidateMs: 0,
    log: (line) => log.push(line),
    accessLog: () => {},
  });
  t.teardown(() => srv.close(0));
  const lock = join(dir, 'cache/info', `${createHash('sha1').update('/big.iso').digest('hex')}_s.lock`);
  const leftovers = () => {
    const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [e.name]));
    return walk(join(dir, 'cache')).filter((n) => n.endsWith('.lock') || n.includes('tmp'));
  };
  return { srv, log, lock, leftovers };
}

t.test('a build that outlived its request ends quietly at a stop', async (t) => {
  const s = await serve(t, 300);
  const r = await request(s.srv.url, URL_PATH);
  t.equal(r.status, 503, 'the request timed out');
  t.ok(existsSync(s.lock), 'the build goes on after the answer');
  await s.srv.close();
  t.same(
    s.log.filter((l) => !l.includes('trackers file')),
    [],
    'nothing logged: no internal error, no stack',
  );
  t.ok(await until(5000, () => s.leftovers().length === 0), 'the cut-short build leaves no lock or temp file');
});

t.test('a client still waiting when the grace runs out gets a 503 with Retry-After', async (t) => {
  const s = await serve(t, 60_000);
  const pending = request(s.srv.url, URL_PATH);
  t.ok(await until(10_000, () => existsSync(s.lock), 5), 'the build is under way');
  const closed = s.srv.close(0);
  const r = await pending;
  t.equal(r.status, 503);
  t.equal(r.headers['retry-after'], '5');
  t.equal(r.body.toString(), 'service is stopping\n');
  await closed;
  t.same(
    s.log.filter((l) => !l.includes('trackers file')),
    [],
    'nothing logged',
  );
  t.ok(await until(5000, () => s.leftovers().length === 0), 'no lock or temp file left');
});

t.test('HashPool.close fails queued, running and later jobs with its typed reason', async (t) => {
  const dir = t.testdir({});
  const file = join(dir, 'big');
  writeFileSync(file, '');
  truncateSync(file, 16 * 1024 * 1024);
  const pool = new HashPool(1);
  // Tasks of 16 MiB, one worker: it is sent two (one to hash, one to go on
  // with), the third waits in the queue.
  const segments = [{ path: file, offset: 0, length: 16 * 1024 * 1024 }];
  const hash = (p: HashPool) => p.hashStream(segments, 1024 * 1024);
  const onWorker = [hash(pool), hash(pool)];
  const queued = hash(pool);
  t.equal(pool.pending, 1, 'one task waits in the queue');
  const reason = new PkgError('busy', 'service is stopping');
  const checks = [
    t.rejects(onWorker[0]!, reason, 'the task being hashed'),
    t.rejects(onWorker[1]!, reason, 'the task sent to the worker next'),
    t.rejects(queued, reason, 'the queued task'),
  ];
  await pool.close(reason);
  await Promise.all(checks);
  await t.rejects(hash(pool), reason, 'a task after the close');
  const other = new HashPool(1);
  const job = t.rejects(hash(other), { name: 'PkgError', kind: 'busy' }, 'without a reason: still typed');
  await other.close();
  await job;
});
