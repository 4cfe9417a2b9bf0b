// `npm run bench:serve`: how close a cached digest GET comes to a bare
// node:http server answering a body of the same size (same load tool, same
// run), and the server time of a cold POST of 200 packages whose pieces are
// already cached. Targets: ratio >= 0.70, cold POST <= 20 ms.
import autocannon from 'autocannon';
import { spawn, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fstatSync, mkdtempSync, mkdirSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/pkgtorrent', import.meta.url));
// An empty variable counts as unset, as in hash.mjs.
const DURATION = Number(process.env.BENCH_SECONDS || 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS || 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS || 10);

const sha1hex = (s) => createHash('sha1').update(s).digest('hex');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const env = { ...process.env, NODE_OPTIONS: '', PKGTORRENT_CONFIG: '' };

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

function http(url, method, body) {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: body ? { 'Content-Type': 'application/x-www-form-urlencoded' } : {} }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const form = (ps) => ps.map((p) => `p=${encodeURIComponent(p)}`).join('&');

function load(url, duration = DURATION) {
  return new Promise((resolve, reject) => {
    autocannon({ url, connections: CONNECTIONS, duration, pipelining: 1 }, (err, r) => (err ? reject(err) : resolve(r)));
  });
}

const serveArgs = [BIN, 'serve', '--host', '127.0.0.1', '--port', '0', '--root', root, '--cache-dir', cache, '--trackers', join(work, 'no-trackers')];
// --revalidate 0 answers every GET from a stat of all 40 files made after it
// arrived (GETs arriving in one turn share it), so a replaced package never
// yields its old torrent; the default 1s window bounds staleness instead. Both
// are measured so the cost of the guarantee is visible.
const serve = await startLogged([...serveArgs, '--revalidate', '0'], 'serve.log', /serving (http:\/\/\S+?)\/? /);
const windowed = await startLogged([...serveArgs, '--revalidate', '1s'], 'serve-window.log', /serving (http:\/\/\S+?)\/? /);

// 1. Cached digest of 40 packages.
const forty = paths.slice(0, 40);
const digestUrl = `${serve.url}/pub/torrent_service/digest/${sha1hex(forty.join('\n'))}`;
const posted = await http(digestUrl, 'POST', form(forty));
if (posted.status !== 200) throw new Error(`POST: ${posted.status} ${posted.body}`);
const cached = await http(digestUrl, 'GET');
if (cached.status !== 200 || !cached.body.equals(posted.body)) throw new Error('cached GET differs');
const size = cached.body.length;

const bareScript = `
const http = require('node:http');
const body = Buffer.alloc(${size}, 1);
const s = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'application/x-bittorrent', 'Content-Disposition': 'attachment; filename=x.torrent', 'Content-Length': body.length });
  res.end(body);
});
s.listen(0, '127.0.0.1', () => process.stderr.write('bare: serving http://127.0.0.1:' + s.address().port + '/ \\n'));`;
const bare = await startLogged(['-e', bareScript], 'bare.log', /serving (http:\/\/\S+?)\/? /);

// Other processes share this machine, so one long run each says little:
// alternate short rounds (order flipped each round) after a warm-up, and
// compare medians.
const bareUrl = `${bare.url}/pub/torrent_service/digest/x`;
const windowUrl = digestUrl.replace(serve.url, windowed.url);
const targets = { serve: digestUrl, window: windowUrl, bare: bareUrl };
for (const url of Object.values(targets)) await load(url, 2);
const rates = { serve: [], window: [], bare: [] };
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 ? ['bare', 'window', 'serve'] : ['serve', 'window', 'bare'];
  for (const which of order) {
    const r = await load(targets[which]);
    if (which !== 'bare' && (r.non2xx || r.errors)) throw new Error(`${which}: ${r.non2xx} non-2xx, ${r.errors} errors`);
    rates[which].push(r.requests.average);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const list = (xs, d = 0) => `[${xs.map((v) => v.toFixed(d)).join(' ')}]`;
console.log(`cached digest GET, 40 packages, ${size}-byte torrent, ${CONNECTIONS} connections, ${ROUNDS} rounds of ${DURATION}s each (autocannon)`);
console.log(`  bare http:                  median ${median(rates.bare).toFixed(0)} req/s  ${list(rates.bare)}`);
for (const [which, label] of [['serve', 'serve --revalidate 0'], ['window', 'serve (default 1s)']]) {
  const ratios = rates[which].map((v, i) => v / rates.bare[i]);
  console.log(`  ${(label + ':').padEnd(28)}median ${median(rates[which]).toFixed(0)} req/s  ${list(rates[which])}  ratio median ${median(ratios).toFixed(2)} ${list(ratios, 2)} (target >= 0.70)`);
}
windowed.child.kill();
bare.child.kill();

// 2. Cold POSTs of 200 packages whose pieces are cached: fill the piece cache
// with `hash`, then POST permutations the info cache has never seen.
execFileSync(process.execPath, [BIN, 'hash', '--root', root, '--cache-dir', cache, '--quiet'], { env, stdio: 'inherit' });
const times = [];
for (let run = 0; run < 7; run++) {
  const order = [...paths.slice(run), ...paths.slice(0, run)];
  const url = `${serve.url}/pub/torrent_service/digest/${sha1hex(order.join('\n'))}`;
  // Only what the log gains from here on is read: by now it holds a line per GET of step 1.
  const from = statSync(serve.log).size;
  const r = await http(url, 'POST', form(order));
  if (r.status !== 200) throw new Error(`cold POST: ${r.status} ${r.body}`);
  // Server time: the duration in serve's own access log line for that
  // request (the log is written in batches, at most 50 ms late).
  let lines = [];
  let line;
  for (let i = 0; i < 100 && !line; i++) {
    await sleep(10);
    lines = logFrom(serve.log, from).split('\n');
    line = lines.find((l) => l.includes(`POST ${new URL(url).pathname} 200`));
  }
  if (!line) throw new Error('no access log line for the cold POST');
  const built = lines.find((l) => l.includes(`built ${url.split('/').pop()}`));
  if (!/ 0 hashed/.test(built ?? '')) throw new Error(`expected no hashing: ${built}`);
  times.push(Number(/ ([\d.]+)ms$/.exec(line)[1]));
}
console.log(`cold POST, 200 packages, pieces cached, info not (server time from the access log, 7 runs, new digest each)`);
// Step 1 made this server hash 40 of the packages, which it keeps in memory.
console.log(`  first (piece entries of 160 packages read from disk, 40 in memory): ${times[0].toFixed(1)} ms`);
console.log(`  later (piece hashes in serve's memory): median ${median(times.slice(1)).toFixed(1)} ms, best ${Math.min(...times.slice(1)).toFixed(1)} ms  [${times.map((v) => v.toFixed(1)).join(' ')}] (target <= 20 ms)`);
// The exit handler stops the server and removes the work dir.
process.exit(0);
