// `npm run bench:serve`: how close cached digest GETs come to a bare
// node:http server answering a body of the same size, in the same run, as
// interleaved rounds (each round runs every case once, the order reversed
// every other round), so each ratio compares cases measured seconds apart:
//
//   - one hot digest (40 packages), serve with the 1 s revalidation window
//     (the default) and strict (--revalidate 0): ratio to bare (target for
//     the default >= 0.70);
//   - GETs spread uniformly over 10,000 cached digests of 4 packages each,
//     1 s window: ratio to the hot digest of the same round (target >= 0.8);
//   - serve's RSS after each case, and its CPU per request (a paired ratio
//     less moved by other load on the machine than req/s);
//   - the hot digest again on a serve with --metrics-listen (Prometheus
//     counters and a histogram per request): ratio to the hot digest
//     without (target >= 0.95);
//   - the hot digest again on a serve with --log-format json (pino objects
//     instead of text lines): ratio to the hot digest with text (target
//     >= 0.95);
//   - the server time of cold POSTs of 200 packages whose pieces are cached
//     (target <= 20 ms).
//
//   npm run bench:serve                         (builds first)
//   BENCH_ROUNDS=7 BENCH_SECONDS=5 BENCH_CONNECTIONS=10 node test/bench/serve.mjs
//
// Everything lives in a temp dir, removed at the end. Takes about
// ROUNDS x 6 cases x SECONDS plus ~1 min of setup (10k POSTs); 2-3 min with
// the defaults on a 2-core machine.
import autocannon from 'autocannon';
import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fstatSync, mkdtempSync, mkdirSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/pkgtorrent', import.meta.url));
// An empty variable counts as unset, as in hash.mjs.
const DURATION = Number(process.env.BENCH_SECONDS || 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS || 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS || 10);
const SPREAD = 10_000;
const SPREAD_PACKAGES = 4;

const sha1hex = (s) => createHash('sha1').update(s).digest('hex');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const env = { ...process.env, NODE_OPTIONS: '', PKGTORRENT_CONFIG: '' };
const benchStarted = Date.now();
const since = () => `${((Date.now() - benchStarted) / 1000).toFixed(0)} s`;
const progress = (line) => process.stderr.write(`[${since()}] ${line}\n`);

const work = mkdtempSync(join(tmpdir(), 'pkgtorrent-bench-'));
const root = join(work, 'root');
const cache = join(work, 'cache');
mkdirSync(join(root, 'pub/pkgs'), { recursive: true });
const N = 200;
const paths = [];
for (let i = 0; i < N; i++) {
  const name = `pkg-${String(i).padStart(3, '0')}-1.0-1.el9.x86_64.rpm`;
  writeFileSync(join(root, 'pub/pkgs', name), randomBytes(20_000 + ((i * 7919) % 200_000)));
  paths.push(`/pub/pkgs/${name}`);
}

const children = [];
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

/** Starts a node process whose stderr goes to a file; resolves with the URL it prints. */
async function startLogged(args, logName, re) {
  const log = join(work, logName);
  const fd = openSync(log, 'w');
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'ignore', fd] });
  children.push(child);
  for (let i = 0; i < 200; i++) {
    const m = re.exec(readFileSync(log, 'utf8'));
    if (m) return { child, url: m[1], log };
    await sleep(50);
  }
  throw new Error(`${logName}: did not start:\n${readFileSync(log, 'utf8')}`);
}

/** The text of a file from byte `from` on. */
function logFrom(path, from) {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(Math.max(0, fstatSync(fd).size - from));
    readSync(fd, buf, 0, buf.length, from);
    return buf.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** CPU seconds (user + system) a process has used so far (from /proc, Linux). */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Resident and peak resident set of a process, in MB (from /proc, Linux). */
function rss(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)[1]);
  return { now: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024 };
}

function http(url, method, body, agent) {
  return new Promise((resolve, reject) => {
    const headers = body ? { 'Content-Type': 'application/x-www-form-urlencoded' } : {};
    const req = request(url, { method, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const form = (ps) => ps.map((p) => `p=${encodeURIComponent(p)}`).join('&');

/**
 * One autocannon run. `spread`: URL paths the connections cycle through,
 * each connection its own shuffled share (connection k takes every
 * CONNECTIONS-th path from k on), so over the run every path is asked about
 * equally often and concurrent connections rarely ask for the same one.
 * Requests are encoded once per run, before the clock starts.
 */
function load(url, duration = DURATION, spread = null) {
  let next = 0;
  const setupClient = spread
    ? (client) => {
        const k = next++ % CONNECTIONS;
        const mine = spread.filter((_, i) => i % CONNECTIONS === k);
        for (let i = mine.length - 1; i > 0; i--) {
          const j = Math.floor(Math.random() * (i + 1));
          [mine[i], mine[j]] = [mine[j], mine[i]];
        }
        client.setRequests(mine.map((path) => ({ method: 'GET', path })));
      }
    : undefined;
  return new Promise((resolve, reject) => {
    autocannon({ url, connections: CONNECTIONS, duration, pipelining: 1, setupClient }, (err, r) => (err ? reject(err) : resolve(r)));
  });
}

// The piece cache first (the cron job's work), so that no POST below hashes.
execFileSync(process.execPath, [BIN, 'hash', '--root', root, '--cache-dir', cache, '--quiet'], { env, stdio: 'inherit' });

// One process per case, sharing the cache dir as processes on a mirror do;
// each case's RSS is its own process's. The revalidate window is given
// explicitly so the rows stay what they say whatever the default is.
const serveArgs = [BIN, 'serve', '--host', '127.0.0.1', '--port', '0', '--root', root, '--cache-dir', cache, '--trackers', join(work, 'no-trackers')];
const ready = /serving (http:\/\/\S+?)\/? /;
const windowed = await startLogged([...serveArgs, '--revalidate', '1s'], 'serve-window.log', ready);
const strict = await startLogged([...serveArgs, '--revalidate', '0'], 'serve-strict.log', ready);
const spreadServe = await startLogged([...serveArgs, '--revalidate', '1s'], 'serve-spread.log', ready);
const metered = await startLogged([...serveArgs, '--revalidate', '1s', '--metrics-listen', '127.0.0.1:0'], 'serve-metrics.log', ready);
const jsonLogged = await startLogged([...serveArgs, '--revalidate', '1s', '--log-format', 'json'], 'serve-json.log', /"msg":"serving (http:\/\/[^\s"]+?)\/? /);

// 1. One hot digest of 40 packages, built by a POST to the windowed server;
// the strict one finds it in the shared cache (same info hash; the web seed
// names each server's own port).
const forty = paths.slice(0, 40);
const fortyPath = `/pub/torrent_service/digest/${sha1hex(forty.join('\n'))}`;
const posted = await http(windowed.url + fortyPath, 'POST', form(forty));
if (posted.status !== 200) throw new Error(`POST: ${posted.status} ${posted.body}`);
for (const s of [windowed, strict, metered, jsonLogged]) {
  const cached = await http(s.url + fortyPath, 'GET');
  const same = cached.headers['content-disposition'] === posted.headers['content-disposition'];
  if (cached.status !== 200 || !same || cached.body.length !== posted.body.length) throw new Error(`cached GET from ${s.log} differs`);
}
const size = posted.body.length;

// 2. 10,000 distinct digests of 4 packages each (sorted, as the client
// sends them), built by POSTs with many in flight; pieces are cached, so
// each POST only encodes and writes an info entry.
let seed = 0x9e3779b9;
const rand = (n) => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) % n;
};
const sets = new Map();
while (sets.size < SPREAD) {
  const pick = new Set();
  while (pick.size < SPREAD_PACKAGES) pick.add(rand(N));
  const ps = [...pick].sort((a, b) => a - b).map((i) => paths[i]);
  sets.set(sha1hex(ps.join('\n')), ps);
}
progress(`building ${SPREAD} digests by POST ...`);
const setupStarted = Date.now();
const setupCpu = cpuSeconds(spreadServe.child.pid);
const agent = new Agent({ keepAlive: true, maxSockets: 32 });
const spreadPaths = [];
let spreadBytes = 0;
const queue = [...sets];
await Promise.all(
  Array.from({ length: 32 }, async () => {
    for (let item; (item = queue.pop()); ) {
      const [digest, ps] = item;
      const path = `/pub/torrent_service/digest/${digest}`;
      const r = await http(spreadServe.url + path, 'POST', form(ps), agent);
      if (r.status !== 200) throw new Error(`spread POST: ${r.status} ${r.body}`);
      spreadPaths.push(path);
      spreadBytes += r.body.length;
    }
  }),
);
agent.destroy();
const setupSeconds = (Date.now() - setupStarted) / 1000;
const setupServeCpu = cpuSeconds(spreadServe.child.pid) - setupCpu;
const probe = await http(spreadServe.url + spreadPaths[0], 'GET');
if (probe.status !== 200) throw new Error(`spread GET after POST: ${probe.status}`);
progress(`built in ${setupSeconds.toFixed(1)} s (serve CPU ${setupServeCpu.toFixed(1)} s)`);

const bareScript = `
const http = require('node:http');
const body = Buffer.alloc(${size}, 1);
const s = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'application/x-bittorrent', 'Content-Disposition': 'attachment; filename=x.torrent', 'Content-Length': body.length });
  res.end(body);
});
s.listen(0, '127.0.0.1', () => process.stderr.write('bare: serving http://127.0.0.1:' + s.address().port + '/ \\n'));`;
const bare = await startLogged(['-e', bareScript], 'bare.log', ready);

const cases = {
  bare: { label: `bare node:http (${size}-byte body)`, proc: bare, url: `${bare.url}/pub/torrent_service/digest/x` },
  hot: { label: 'one hot digest, default (1 s window)', proc: windowed, url: windowed.url + fortyPath },
  strict: { label: 'one hot digest, strict (--revalidate 0)', proc: strict, url: strict.url + fortyPath },
  spread: { label: `${SPREAD / 1000}k digests spread, default (1 s window)`, proc: spreadServe, url: spreadServe.url + spreadPaths[0], spread: spreadPaths },
  metrics: { label: 'one hot digest, default, --metrics-listen', proc: metered, url: metered.url + fortyPath },
  json: { label: 'one hot digest, default, --log-format json', proc: jsonLogged, url: jsonLogged.url + fortyPath },
};
const names = Object.keys(cases);
progress(`warm-up, then ${ROUNDS} rounds of ${names.length} x ${DURATION} s ...`);
for (const c of Object.values(cases)) await load(c.url, 2, c.spread);
const rates = Object.fromEntries(names.map((n) => [n, []]));
const rssAfter = Object.fromEntries(names.map((n) => [n, []]));
// The server's own CPU per request: less disturbed than req/s by whatever
// else the machine runs (the load generator shares it too).
const cpuPerRequest = Object.fromEntries(names.map((n) => [n, []]));
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 ? [...names].reverse() : names;
  for (const n of order) {
    const c = cases[n];
    const cpuBefore = cpuSeconds(c.proc.child.pid);
    const r = await load(c.url, DURATION, c.spread);
    if (r.non2xx || r.errors || r.timeouts) throw new Error(`${c.label}: ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts`);
    rates[n].push(r.requests.total / r.duration);
    cpuPerRequest[n].push(((cpuSeconds(c.proc.child.pid) - cpuBefore) / r.requests.total) * 1e6);
    rssAfter[n].push(rss(c.proc.child.pid));
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const list = (xs, d = 0) => `[${xs.map((v) => v.toFixed(d)).join(' ')}]`;
const ratioRow = (n, ref, target) => {
  const ratios = rates[n].map((v, i) => v / rates[ref][i]);
  return { ratios, text: `${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}) to ${ref === 'bare' ? 'bare' : 'hot digest'}${n === 'metrics' ? ' without metrics' : n === 'json' ? ' with text logs' : ''}, target >= ${target}` };
};
console.log(
  `cached digest GETs, ${CONNECTIONS} connections (autocannon), ${ROUNDS} interleaved rounds of ${DURATION} s per case; ` +
    `hot torrent ${size} bytes (40 packages), spread torrents ${Math.round(spreadBytes / SPREAD)} bytes on average (${SPREAD_PACKAGES} packages); ${new Date().toISOString()}`,
);
const rows = [
  ['bare', null],
  ['hot', ratioRow('hot', 'bare', '0.70')],
  ['strict', ratioRow('strict', 'bare', '0.70')],
  ['spread', ratioRow('spread', 'hot', '0.8')],
  ['metrics', ratioRow('metrics', 'hot', '0.95')],
  ['json', ratioRow('json', 'hot', '0.95')],
];
console.log('| case | req/s median | req/s per round | ratio median (range) | RSS after (MB, last round; peak) |');
console.log('|---|---|---|---|---|');
for (const [n, ratio] of rows) {
  const last = rssAfter[n].at(-1);
  console.log(`| ${cases[n].label} | ${median(rates[n]).toFixed(0)} | ${list(rates[n])} | ${ratio ? ratio.text : ''} | ${last.now.toFixed(0)}; peak ${last.peak.toFixed(0)} |`);
}
for (const [n, ratio] of rows.slice(1)) console.log(`  ${cases[n].label}: ratio per round ${list(ratio.ratios, 2)}`);
// As a throughput ratio: reference CPU per request over this case's, per round.
const cpuRatio = (n, ref) => median(cpuPerRequest[n].map((v, i) => cpuPerRequest[ref][i] / v)).toFixed(2);
console.log(
  `  serve CPU per request (us, median; ratio to the reference from per-round CPU): ` +
    [['bare', null], ['hot', 'bare'], ['strict', 'bare'], ['spread', 'hot'], ['metrics', 'hot'], ['json', 'hot']]
      .map(([n, ref]) => `${n} ${median(cpuPerRequest[n]).toFixed(1)}${ref ? ` (${cpuRatio(n, ref)} to ${ref})` : ''}`)
      .join(', '),
);
console.log(`  RSS after each round (MB): ${names.map((n) => `${n} ${list(rssAfter[n].map((x) => x.now))}`).join(', ')}`);
console.log(`  10k setup: ${SPREAD} POSTs (32 in flight) in ${setupSeconds.toFixed(1)} s wall, ${setupServeCpu.toFixed(1)} s of serve's CPU`);
for (const c of [strict, spreadServe, metered, jsonLogged, bare]) c.child.kill();

// 3. Cold POSTs of 200 packages whose pieces are cached: permutations the
// info cache has never seen, to the windowed server.
const times = [];
for (let run = 0; run < 7; run++) {
  const order = [...paths.slice(run), ...paths.slice(0, run)];
  const url = `${windowed.url}/pub/torrent_service/digest/${sha1hex(order.join('\n'))}`;
  // Only what the log gains from here on is read: by now it holds a line per GET of step 1.
  const from = statSync(windowed.log).size;
  const r = await http(url, 'POST', form(order));
  if (r.status !== 200) throw new Error(`cold POST: ${r.status} ${r.body}`);
  // Server time: the duration in serve's own access log line for that
  // request (the log is written in batches, at most 50 ms late).
  let lines = [];
  let line;
  for (let i = 0; i < 100 && !line; i++) {
    await sleep(10);
    lines = logFrom(windowed.log, from).split('\n');
    line = lines.find((l) => l.includes(`POST ${new URL(url).pathname} 200`));
  }
  if (!line) throw new Error('no access log line for the cold POST');
  const built = lines.find((l) => l.includes(`built ${url.split('/').pop()}`));
  if (!/ 0 hashed/.test(built ?? '')) throw new Error(`expected no hashing: ${built}`);
  times.push(Number(/ ([\d.]+)ms$/.exec(line)[1]));
}
console.log(`cold POST, 200 packages, pieces cached, info not (server time from the access log, 7 runs, new digest each)`);
// This server's 40-package POST of step 1 read those piece entries into its memory.
console.log(`  first (piece entries of 160 packages read from disk, 40 in memory): ${times[0].toFixed(1)} ms`);
console.log(`  later (piece hashes in serve's memory): median ${median(times.slice(1)).toFixed(1)} ms, best ${Math.min(...times.slice(1)).toFixed(1)} ms  ${list(times, 1)} (target <= 20 ms)`);
console.log(`(bench:serve took ${since()})`);
// The exit handler stops the servers and removes the work dir.
process.exit(0);
