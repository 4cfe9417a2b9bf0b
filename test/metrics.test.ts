// --metrics-listen of serve and proxy: a known sequence of requests, then
// the exact counters on /metrics; every exposition through Debian's
// `promtool check metrics`; a real Prometheus scraping both and answering a
// PromQL query; /-/ready flipping to 503 and back when serve's root or
// cache dir becomes unusable and when the proxy's engine is killed.
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { need, needBtEngine } from './helpers/oracles.js';
import { startMirror, writeTree } from './helpers/mirror.js';
import { startTestProxy, viaProxy } from './helpers/proxy.js';
import { digestOf, postPaths, request, startServe, type ServeProcess } from './helpers/server.js';
import { freePort, scratch } from './helpers/clients.js';
import { until } from './helpers/poll.js';
import { tmpfs } from './helpers/tmpfs.js';
import { hostname } from 'node:os';
import { VERSION } from '../src/core/version.js';
import { ClusterMetrics, ServeMetrics } from '../src/service/metrics.js';
import type { ServiceResponse } from '../src/service/service-response.js';
import type { Workers } from '../src/cli/supervisor.js';
import { ProxyMetrics } from '../src/proxy/metrics.js';
import type { BtEngine } from '../src/core/bt-engine.js';

type Sample = { name: string; labels: Record<string, string>; value: number };

/** The samples of a text exposition (label values here never hold quotes or commas). */
function samples(text: string): Sample[] {
  return text
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? (\S+)/.exec(l)!;
      const labels = Object.fromEntries((m[2] ?? '').split(',').filter(Boolean).map((kv) => /^(\w+)="(.*)"$/.exec(kv)!.slice(1, 3) as [string, string]));
      return { name: m[1]!, labels, value: Number(m[3]) };
    });
}

/** The value of one series (undefined when absent). */
function value(all: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return all.find((s) => s.name === name && Object.keys(labels).length === Object.keys(s.labels).length && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

async function scrape(base: string): Promise<{ text: string; all: Sample[] }> {
  const r = await request(base, '/metrics');
  if (r.status !== 200) throw new Error(`/metrics: ${r.status}`);
  const text = r.body.toString();
  return { text, all: samples(text) };
}

/** `promtool check metrics`: the exposition is valid and follows Prometheus's naming lint. */
function promtoolCheck(t: Test, text: string, what: string): void {
  if (!need(t, 'promtool')) return;
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  t.equal(r.status, 0, `promtool check metrics accepts ${what}${r.status ? `:\n${r.stdout}${r.stderr}` : ''}`);
}

function metricsUrl(s: ServeProcess): string {
  return /metrics on (http:\/\/\S+)\/metrics/.exec(s.stderr())![1]!;
}

async function ready(base: string): Promise<{ status: number; body: string }> {
  const r = await request(base, '/-/ready');
  return { status: r.status, body: r.body.toString() };
}

t.test('serve: counters after a known sequence of requests, promtool, and a real Prometheus', async (t) => {
  const dir = scratch(t, 'metrics-serve');
  const a = randomBytes(70_000);
  const b = randomBytes(50_000);
  writeTree(join(dir, 'root'), { pub: { 'a.rpm': a, 'b.rpm': b } });
  mkdirSync(join(dir, 'cache'));
  const s = await startServe(t, { root: join(dir, 'root'), cacheDir: join(dir, 'cache'), args: ['--metrics-listen', '127.0.0.1:0'] });
  const m = metricsUrl(s);
  t.not(new URL(m).port, new URL(s.url).port, 'a listener of its own');

  const paths = ['/pub/a.rpm', '/pub/b.rpm'];
  const digest = digestOf(paths);
  const notCached = await request(s.url, `/pub/torrent_service/digest/${digest}`);
  t.equal(notCached.status, 412);
  const built = await postPaths(s.url, 'pub', paths, digest);
  t.equal(built.status, 200);
  const hit = await request(s.url, `/pub/torrent_service/digest/${digest}`);
  t.equal(hit.status, 200);
  const missing = await request(s.url, '/pub/torrent_service/simple/pub/missing.rpm');
  t.equal(missing.status, 404);
  const other = await request(s.url, '/nothing/here');
  t.equal(other.status, 404);
  const sent = [notCached, built, hit, missing, other].reduce((n, r) => n + r.body.length, 0);

  // Counted as each answer closes, a moment after the client has it all.
  let all: Sample[] = [];
  let text = '';
  await until(5000, async () => {
    ({ text, all } = await scrape(m));
    return value(all, 'pkgtorrent_http_requests_total', { handler: 'other', method: 'GET', code: '404' }) === 1;
  });
  const req = (handler: string, method: string, code: string) => value(all, 'pkgtorrent_http_requests_total', { handler, method, code });
  t.equal(req('digest', 'GET', '412'), 1, 'digest GET 412');
  t.equal(req('digest', 'POST', '200'), 1, 'digest POST 200');
  t.equal(req('digest', 'GET', '200'), 1, 'digest GET 200');
  t.equal(req('simple', 'GET', '404'), 1, 'simple GET 404');
  t.equal(req('other', 'GET', '404'), 1, 'a path outside the service: other');
  t.equal(all.filter((x) => x.name === 'pkgtorrent_http_requests_total').length, 5, 'no other series');
  const result = (r: string) => value(all, 'pkgtorrent_torrent_requests_total', { result: r });
  t.same(
    ['hit', 'built', 'not_cached', 'not_found', 'rejected'].map(result),
    [1, 1, 1, 1, 0],
    'torrent requests: hit, built, not_cached, not_found, rejected',
  );
  t.equal(value(all, 'pkgtorrent_http_response_bytes_total'), sent, `response bytes: the ${sent} bodies received`);
  t.equal(value(all, 'pkgtorrent_hash_bytes_total'), a.length + b.length, 'hashed bytes: both files, once');
  t.equal(value(all, 'pkgtorrent_http_request_duration_seconds_count', { handler: 'digest' }), 3, 'histogram count per handler');
  t.equal(value(all, 'pkgtorrent_http_request_duration_seconds_bucket', { handler: 'digest', le: '60' }), 3, 'buckets up to 60 s');
  t.equal(value(all, 'pkgtorrent_build_info', { version: VERSION }), 1, 'build_info');
  t.ok(value(all, 'process_cpu_seconds_total')! > 0, "prom-client's process metrics");
  t.notMatch(text, /pub\/a\.rpm|missing/, 'no path in any label');
  promtoolCheck(t, text, "serve's exposition");

  for (const [path, method, status] of [
    ['/-/healthy', 'GET', 200],
    ['/-/healthy', 'HEAD', 200],
    ['/-/ready', 'GET', 200],
    ['/-/ready', 'HEAD', 200],
    ['/metrics', 'POST', 405],
    ['/pub/torrent_service/digest/' + digest, 'GET', 404],
  ] as const) {
    t.equal((await request(m, path, { method })).status, status, `${method} ${path} on the metrics listener: ${status}`);
  }

  await realPrometheus(t, [m], { 'pkgtorrent_torrent_requests_total{result="built"}': 1 });
});

t.test('serve --workers: the primary sums counters and histograms, shows build_info once, omits the start time', async (t) => {
  // Two workers' registries, each with its own figures, through a JSON round trip as over IPC.
  const one = new ServeMetrics();
  const two = new ServeMetrics();
  const res = (handler: string, code: number, method = 'GET') => ({ handler, statusCode: code, req: { method }, built: false }) as unknown as ServiceResponse;
  one.observe(res('other', 404), 10, 1);
  two.observe(res('other', 404), 10, 2);
  two.observe(res('digest', 412), 5, 3);
  one.hashed(1000);
  two.hashed(234);
  const workers: Workers = {
    readyCount: () => 2,
    ask: async (what) => {
      t.equal(what, 'metrics');
      return Promise.all([one, two].map(async (m, i) => ({ pid: 100 + i, answer: JSON.parse(JSON.stringify(await m.registry.getMetricsAsJSON())) as unknown })));
    },
  };
  const json = await one.registry.getMetricsAsJSON();
  const aggregatorOf = (name: string) => json.find((x) => x.name === name)?.aggregator;
  t.equal(aggregatorOf('pkgtorrent_build_info'), 'first', 'build_info is taken once (aggregator: first)');
  t.equal(aggregatorOf('pkgtorrent_http_requests_total'), 'sum', 'counters are summed');
  t.equal(aggregatorOf('process_start_time_seconds'), 'omit', "prom-client's own choice for the start time");

  const text = await new ClusterMetrics(() => workers).metrics();
  const all = samples(text);
  t.equal(value(all, 'pkgtorrent_http_requests_total', { handler: 'other', method: 'GET', code: '404' }), 2, 'one request in each worker: 2');
  t.equal(value(all, 'pkgtorrent_http_requests_total', { handler: 'digest', method: 'GET', code: '412' }), 1);
  t.equal(value(all, 'pkgtorrent_torrent_requests_total', { result: 'not_cached' }), 1);
  t.equal(value(all, 'pkgtorrent_http_response_bytes_total'), 25, 'bytes summed');
  t.equal(value(all, 'pkgtorrent_hash_bytes_total'), 1234, 'hashed bytes summed');
  t.equal(value(all, 'pkgtorrent_http_request_duration_seconds_count', { handler: 'other' }), 2, 'histogram counts summed');
  t.equal(value(all, 'pkgtorrent_http_request_duration_seconds_bucket', { handler: 'other', le: '0.001' }), 1, 'buckets summed: 1 ms in one worker');
  t.equal(value(all, 'pkgtorrent_http_request_duration_seconds_bucket', { handler: 'other', le: '0.0025' }), 2, 'and 2 ms in the other');
  t.equal(value(all, 'pkgtorrent_build_info', { version: VERSION }), 1, 'build_info 1, not 2');
  t.equal(all.filter((x) => x.name === 'nodejs_version_info').map((x) => x.value).join(), '1', 'nodejs_version_info once');
  t.equal(value(all, 'process_start_time_seconds'), undefined, 'no summed start time');
  t.equal(value(all, 'pkgtorrent_serve_workers_ready'), 2, "the primary's own count");
  promtoolCheck(t, text, "the cluster primary's exposition");
});

t.test('serve --workers 2: a real Prometheus gets the exact counters of the whole service', async (t) => {
  const dir = scratch(t, 'metrics-workers');
  const a = randomBytes(70_000);
  const b = randomBytes(50_000);
  writeTree(join(dir, 'root'), { pub: { 'a.rpm': a, 'b.rpm': b, 'c.rpm': randomBytes(1000) } });
  mkdirSync(join(dir, 'cache/info'), { recursive: true });
  const s = await startServe(t, { root: join(dir, 'root'), cacheDir: join(dir, 'cache'), args: ['--workers', '2', '--metrics-listen', '127.0.0.1:0', '--request-timeout', '1s'] });
  const m = metricsUrl(s);
  t.ok(await until(20_000, async () => value((await scrape(m)).all, 'pkgtorrent_serve_workers_ready') === 2), 'both workers ready');
  t.equal((await ready(m)).status, 200, 'ready');

  const paths = ['/pub/a.rpm', '/pub/b.rpm'];
  const digest = digestOf(paths);
  t.equal((await request(s.url, `/pub/torrent_service/digest/${digest}`)).status, 412);
  t.equal((await postPaths(s.url, 'pub', paths, digest)).status, 200);
  // A new connection each: node:cluster deals them out in turn, so both workers answer hits.
  for (let i = 0; i < 4; i++) t.equal((await request(s.url, `/pub/torrent_service/digest/${digest}`)).status, 200);
  t.equal((await request(s.url, '/pub/torrent_service/simple/pub/missing.rpm')).status, 404);
  // A build another live process holds (this test's lock): the bounded wait ends in 503, in either worker.
  const locked = digestOf(['/pub/c.rpm']);
  writeFileSync(join(dir, 'cache/info', `${locked}.lock`), JSON.stringify({ pid: process.pid, host: hostname(), token: 'x' }));
  t.equal((await postPaths(s.url, 'pub', ['/pub/c.rpm'], locked)).status, 503);

  let all: Sample[] = [];
  let text = '';
  await until(5000, async () => {
    ({ text, all } = await scrape(m));
    return value(all, 'pkgtorrent_http_requests_total', { handler: 'digest', method: 'POST', code: '503' }) === 1;
  });
  const req = (handler: string, method: string, code: string) => value(all, 'pkgtorrent_http_requests_total', { handler, method, code });
  t.same(
    [req('digest', 'GET', '412'), req('digest', 'POST', '200'), req('digest', 'GET', '200'), req('simple', 'GET', '404'), req('digest', 'POST', '503')],
    [1, 1, 4, 1, 1],
    'requests: 412, POST, 4 hits, 404, 503',
  );
  const result = (r: string) => value(all, 'pkgtorrent_torrent_requests_total', { result: r })!;
  t.same(
    [result('hit') + result('revalidated'), ...['built', 'not_cached', 'not_found', 'rejected'].map(result)],
    [4, 1, 1, 1, 1],
    'torrent requests: the hits of both workers',
  );
  // The worker that did not build checks the files before its first answer
  // (revalidated); which GETs do depends on the cluster's turns and the clock.
  t.equal(value(all, 'pkgtorrent_hash_bytes_total'), a.length + b.length, 'hashed once, by one worker');
  t.equal(value(all, 'pkgtorrent_build_info', { version: VERSION }), 1, 'build_info once');
  t.equal(value(all, 'process_start_time_seconds'), undefined, 'no start time summed over processes');
  promtoolCheck(t, text, "serve --workers 2's exposition");

  await realPrometheus(t, [m], {
    'pkgtorrent_http_requests_total{handler="digest",method="GET",code="412"}': 1,
    'pkgtorrent_http_requests_total{handler="digest",method="POST",code="200"}': 1,
    'pkgtorrent_http_requests_total{handler="digest",method="GET",code="200"}': 4,
    'pkgtorrent_http_requests_total{handler="simple",method="GET",code="404"}': 1,
    'pkgtorrent_http_requests_total{handler="digest",method="POST",code="503"}': 1,
    'sum(pkgtorrent_http_requests_total)': 8,
    'sum(pkgtorrent_torrent_requests_total{result=~"hit|revalidated"})': 4,
    'pkgtorrent_build_info': 1,
    'pkgtorrent_serve_workers_ready': 2,
  });

  // The primary's /-/ready asks the workers: a root they cannot read fails it, naming one.
  renameSync(join(dir, 'root'), join(dir, 'away'));
  const down = await ready(m);
  t.equal(down.status, 503);
  t.match(down.body, /^worker \d+: root .*root cannot be read: .*\n$/, `one line: ${down.body.trim()}`);
  renameSync(join(dir, 'away'), join(dir, 'root'));
  t.equal((await ready(m)).status, 200, 'back');
});

/**
 * Starts Prometheus (127.0.0.1, a free port, a temp config and data dir,
 * stopped in teardown) scraping `targets` every second, and waits for each
 * PromQL query to return its expected value (all from one evaluation time).
 */
async function realPrometheus(t: Test, targets: string[], checks: Record<string, number>): Promise<void> {
  if (!need(t, 'prometheus')) return;
  const dir = scratch(t, 'prometheus');
  const port = await freePort();
  const hosts = targets.map((u) => new URL(u).host);
  writeFileSync(
    join(dir, 'prometheus.yml'),
    `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: pkgtorrent\n    static_configs:\n      - targets: [${hosts.map((h) => `'${h}'`).join(', ')}]\n`,
  );
  const child = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (c: Buffer) => (log = (log + c.toString()).slice(-4000)));
  const exited = new Promise((r) => child.once('exit', r));
  t.teardown(async () => {
    child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(killer);
  });
  const api = `http://127.0.0.1:${port}`;
  /** Every series the query returns, as numbers; null when Prometheus does not answer yet. */
  const query = async (q: string, time: number): Promise<number[] | null> => {
    try {
      const r = await request(api, `/api/v1/query?query=${encodeURIComponent(q)}&time=${time}`);
      if (r.status !== 200) return null;
      return (JSON.parse(r.body.toString()) as { data: { result: Array<{ value: [number, string] }> } }).data.result.map((x) => Number(x.value[1]));
    } catch {
      return null;
    }
  };
  let got: Record<string, number[] | null> = {};
  const ok = await until(30_000, async () => {
    const time = Date.now() / 1000;
    got = {};
    for (const q of Object.keys(checks)) got[q] = await query(q, time);
    return Object.entries(checks).every(([q, v]) => got[q]?.length === 1 && got[q][0] === v);
  }, 250);
  for (const [q, v] of Object.entries(checks)) t.same(got[q], [v], `Prometheus: ${q} = ${v}`);
  if (!ok) t.comment(`Prometheus log:\n${log}`);
  t.same(await query('up', Date.now() / 1000), hosts.map(() => 1), `every target up: ${hosts.join(' and ')}`);
}

t.test('serve: revalidated answers, limit rejections, cache lookups, builds and the trackers file', async (t) => {
  const dir = scratch(t, 'metrics-state');
  writeTree(join(dir, 'root'), { pub: { 'a.rpm': randomBytes(30_000), 'b.rpm': randomBytes(20_000), 'c.rpm': randomBytes(10_000) } });
  mkdirSync(join(dir, 'cache'));
  writeFileSync(join(dir, 'trackers'), 'http://127.0.0.1:1/announce\nnot a tracker\n');
  const s = await startServe(t, {
    root: join(dir, 'root'),
    cacheDir: join(dir, 'cache'),
    trackers: join(dir, 'trackers'),
    args: ['--metrics-listen', '127.0.0.1:0', '--revalidate', '0', '--max-paths', '2', '--max-glob-matches', '1'],
  });
  const m = metricsUrl(s);
  const ab = ['/pub/a.rpm', '/pub/b.rpm'];
  const bc = ['/pub/b.rpm', '/pub/c.rpm'];
  t.equal((await postPaths(s.url, 'pub', ab, digestOf(ab))).status, 200, 'built: a and b hashed');
  t.equal((await request(s.url, `/pub/torrent_service/digest/${digestOf(ab)}`)).status, 200, 'a GET, strict: after a stat check');
  const three = [...ab, '/pub/c.rpm'];
  t.equal((await postPaths(s.url, 'pub', three, digestOf(three))).status, 413, 'three paths over --max-paths 2');
  t.equal((await request(s.url, '/pub/torrent_service/simple/pub/*.rpm')).status, 413, 'three matches over --max-glob-matches 1');
  t.equal((await postPaths(s.url, 'pub', bc, digestOf(bc))).status, 200, 'built: b from the piece cache, c hashed');

  let all: Sample[] = [];
  let text = '';
  await until(5000, async () => {
    ({ text, all } = await scrape(m));
    return value(all, 'pkgtorrent_torrent_requests_total', { result: 'built' }) === 2;
  });
  const result = (r: string) => value(all, 'pkgtorrent_torrent_requests_total', { result: r });
  t.same(['hit', 'revalidated', 'built', 'not_cached', 'not_found', 'rejected'].map(result), [0, 1, 2, 0, 0, 2], 'torrent requests by result');
  const limit = (l: string) => value(all, 'pkgtorrent_limit_rejections_total', { limit: l });
  t.same(['max-paths', 'max-glob-matches', 'max-body', 'queue-limit', 'request-timeout'].map(limit), [1, 1, 0, 0, 0], 'rejections by limit');
  const lookups = (cache: string, r: string) => value(all, 'pkgtorrent_cache_lookups_total', { cache, result: r });
  t.same([lookups('info', 'hit'), lookups('info', 'miss')], [1, 2], 'info cache: the GET found it; two builds');
  t.same([lookups('piece', 'hit'), lookups('piece', 'miss')], [1, 3], 'piece cache: b once cached; a, b and c hashed');
  t.equal(value(all, 'pkgtorrent_builds_in_flight'), 0, 'no build left running');
  t.equal(value(all, 'pkgtorrent_hash_tasks_queued'), 0, 'no hashing queued');
  t.equal(value(all, 'pkgtorrent_trackers_file_reloads_total'), 1, 'trackers file read once');
  t.equal(value(all, 'pkgtorrent_trackers_file_invalid_lines'), 1, 'one line of it ignored');
  promtoolCheck(t, text, "serve's exposition with the service's state");
});

t.test('serve: /-/ready is 503 with the reason while the root is gone, and again 200 when it is back', async (t) => {
  const dir = scratch(t, 'metrics-ready');
  writeTree(join(dir, 'root'), { pub: { 'a.rpm': randomBytes(1000) } });
  mkdirSync(join(dir, 'cache'));
  const s = await startServe(t, { root: join(dir, 'root'), cacheDir: join(dir, 'cache'), args: ['--metrics-listen', '127.0.0.1:0'] });
  const m = metricsUrl(s);
  t.same(await ready(m), { status: 200, body: 'OK\n' });
  renameSync(join(dir, 'root'), join(dir, 'away'));
  const down = await ready(m);
  t.equal(down.status, 503);
  t.match(down.body, /^root .*root cannot be read: .*\n$/, `one line: ${down.body.trim()}`);
  renameSync(join(dir, 'away'), join(dir, 'root'));
  t.equal((await ready(m)).status, 200, 'back');
  t.equal((await request(m, '/-/healthy')).status, 200, 'healthy all along');
});

t.test('serve: /-/ready is 503 while the cache dir is a read-only file system, 200 when writable again', async (t) => {
  const dir = scratch(t, 'metrics-cache');
  writeTree(join(dir, 'root'), { pub: { 'a.rpm': randomBytes(1000) } });
  const cache = tmpfs(t, '4m');
  if (!cache) return;
  const s = await startServe(t, { root: join(dir, 'root'), cacheDir: cache, args: ['--metrics-listen', '127.0.0.1:0'] });
  const m = metricsUrl(s);
  t.equal((await ready(m)).status, 200);
  // chmod does not stop root: a read-only mount does (EROFS for everyone).
  execFileSync('mount', ['-o', 'remount,ro', cache]);
  const down = await ready(m);
  t.equal(down.status, 503);
  t.match(down.body, /^cache dir .* cannot be written: .*read-only/i, down.body.trim());
  execFileSync('mount', ['-o', 'remount,rw', cache]);
  t.equal((await ready(m)).status, 200, 'back');
});

t.test('proxy: counters after a BitTorrent download and a store hit; /-/ready follows the engine through a restart', async (t) => {
  if (!needBtEngine(t)) return;
  const big = randomBytes(600_000);
  const mirror = await startMirror(t, { pool: { 'big_1.0_all.deb': big, Packages: 'Package: big\n' } });
  const storeDir = scratch(t, 'metrics-store');
  const p = await startTestProxy(t, { metricsListen: '127.0.0.1:0', store: storeDir });
  const m = p.metricsUrl!;
  t.ok(m, 'the proxy reports its metrics URL');
  t.equal((await ready(m)).status, 200, 'ready with the engine up');

  t.ok((await viaProxy(p.url, `${mirror.url}/pool/big_1.0_all.deb`)).body.equals(big));
  await p.line(/big_1\.0_all\.deb 200 bittorrent/);
  t.ok((await viaProxy(p.url, `${mirror.url}/pool/big_1.0_all.deb`)).body.equals(big));
  await p.line(/big_1\.0_all\.deb 200 store/);
  t.equal((await viaProxy(p.url, `${mirror.url}/pool/Packages`)).status, 200);
  await p.line(/pool\/Packages 200 direct/);

  const { text, all } = await scrape(m);
  const path = (x: string) => value(all, 'pkgtorrent_proxy_requests_total', { path: x });
  t.same(['bittorrent', 'store', 'direct', 'tunnel', 'refused'].map(path), [1, 1, 1, 0, 0], 'requests by path');
  const source = (x: string) => value(all, 'pkgtorrent_proxy_bytes_total', { source: x });
  // No tracker: the download's bytes all came from the mirror's HTTP, as its log line says; Packages was relayed.
  t.same(['peers', 'mirror', 'store', 'direct'].map(source), [0, big.length, big.length, 13], 'bytes by source');
  t.equal(value(all, 'pkgtorrent_proxy_fallbacks_total', { cause: 'stalled' }), 0);
  t.equal(value(all, 'pkgtorrent_proxy_engine_restarts_total'), 0);
  // The store: the package and its torrent, as the file system has them.
  const [stored] = readdirSync(join(storeDir, 'done'));
  const storedFiles = readdirSync(join(storeDir, 'done', stored!)).sort();
  t.same(storedFiles, ['big_1.0_all.deb', 'big_1.0_all.deb.torrent']);
  const torrentBytes = statSync(join(storeDir, 'done', stored!, 'big_1.0_all.deb.torrent')).size;
  t.equal(value(all, 'pkgtorrent_proxy_store_packages'), 1, 'one package stored');
  t.equal(value(all, 'pkgtorrent_proxy_store_bytes'), big.length + torrentBytes, 'store bytes: the package and its torrent');
  t.equal(value(all, 'pkgtorrent_proxy_seeding_torrents'), 1, 'the completed package is seeded');
  t.equal(value(all, 'pkgtorrent_proxy_uploaded_bytes_total'), 0, 'no peer took anything');
  t.equal(value(all, 'pkgtorrent_proxy_peers'), 0, 'no peer');
  promtoolCheck(t, text, "the proxy's exposition");

  const pid = p.engine.pid!;
  process.kill(pid, 'SIGKILL');
  let down = { status: 0, body: '' };
  t.ok(await until(5000, async () => (down = await ready(m)).status === 503, 10), `503 once the engine is dead: ${down.body.trim()}`);
  t.match(down.body, /engine/, 'the reason names the engine');
  t.ok(await until(20_000, async () => (await ready(m)).status === 200), 'and 200 when it is back');
  t.not(p.engine.pid, pid, 'a new engine process');
  const after = await scrape(m);
  t.equal(value(after.all, 'pkgtorrent_proxy_engine_restarts_total'), 1, 'one restart counted');
  t.ok(await until(20_000, async () => value((await scrape(m)).all, 'pkgtorrent_proxy_seeding_torrents') === 1), 'the stored package is seeded again by the new engine');
  t.equal(value((await scrape(m)).all, 'pkgtorrent_proxy_store_packages'), 1, 'still stored');

  await realPrometheus(t, [m], { 'sum(pkgtorrent_proxy_requests_total)': 3 });
});


t.test('proxy: bytes uploaded to peers carry over an engine restart, whose own count starts at 0', async (t) => {
  const engine = { generation: 1, uploaded: 100, peers: 2, session: async () => ({ uploaded: engine.uploaded, downloaded: 0, torrents: 1, peers: engine.peers, listen_port: 1, version: 'x' }) };
  const metrics = new ProxyMetrics(() => engine as unknown as BtEngine);
  const read = async () => {
    const all = samples(await metrics.registry.metrics());
    return [value(all, 'pkgtorrent_proxy_uploaded_bytes_total'), value(all, 'pkgtorrent_proxy_peers')];
  };
  t.same(await read(), [100, 2]);
  engine.uploaded = 150;
  t.same(await read(), [150, 2]);
  engine.generation = 2;
  engine.uploaded = 20;
  engine.peers = 0;
  t.same(await read(), [170, 0], 'the new engine counts on from what the old one had sent');
  engine.uploaded = 30;
  t.same(await read(), [180, 0]);
});
