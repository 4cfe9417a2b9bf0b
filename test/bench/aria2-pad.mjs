// `npm run bench:aria2-pad`: aria2c downloading a padded service torrent
// (several one-byte pads and other small ones, fetched from the nullfile
// route) against the same files in an unpadded torrent (`pkgtorrent make`,
// mktorrent layout), both through the web seed of one `serve --files`.
// Rounds alternate padded, unpadded, padded, ... (order flipped every pair);
// each pair gives a ratio. Target: median padded/unpadded <= 1.2.
// Everything on 127.0.0.1; no DHT, no LPD, no peer exchange, no trackers.
import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import bencode from 'bencode';

const BIN = fileURLToPath(new URL('../../bin/pkgtorrent', import.meta.url));
// An empty variable counts as unset, as in the other benchmarks.
const PAIRS = Math.max(5, Number(process.env.BENCH_PAIRS || 7));
const PL = 16384;
const env = { ...process.env, NODE_OPTIONS: '', PKGTORRENT_CONFIG: '' };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const work = mkdtempSync(join(tmpdir(), 'pkgtorrent-bench-aria2-'));
const root = join(work, 'root');
const cache = join(work, 'cache');
mkdirSync(join(root, 'pub/pads'), { recursive: true });
// Six files one byte short of a piece boundary (one-byte pads), a one-byte
// file (pad PL-1), pads of 2 and 100 bytes, and a last file without one.
const SIZES = [PL - 1, 2 * PL - 1, 1, 3 * PL - 1, PL - 2, 4 * PL - 1, 2 * PL - 100, 5 * PL - 1, PL - 1, 2 * PL - 1, 50_000];
const names = SIZES.map((_, i) => `f${String(i).padStart(2, '0')}.bin`);
SIZES.forEach((size, i) => writeFileSync(join(root, 'pub/pads', names[i]), randomBytes(size)));

const children = new Set();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

const log = join(work, 'serve.log');
const serve = spawn(
  process.execPath,
  [BIN, 'serve', '--host', '127.0.0.1', '--port', '0', '--root', root, '--cache-dir', cache, '--trackers', join(work, 'no-trackers'), '--piece-length', '16K', '--files'],
  { env, stdio: ['ignore', 'ignore', openSync(log, 'w')] },
);
children.add(serve);
let base;
for (let i = 0; i < 200 && !base; i++) {
  base = /serving (http:\/\/\S+?)\/? /.exec(readFileSync(log, 'utf8'))?.[1];
  if (!base) await sleep(50);
}
if (!base) throw new Error(`serve did not start:\n${readFileSync(log, 'utf8')}`);

function get(url) {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks) }));
    })
      .on('error', reject)
      .end();
  });
}

const padded = join(work, 'padded.torrent');
const glob = await get(`${base}/pub/torrent_service/simple/pub/pads/*.bin`);
if (glob.status !== 200) throw new Error(`glob torrent: ${glob.status} ${glob.body}`);
writeFileSync(padded, glob.body);
const unpadded = join(work, 'unpadded.torrent');
// Name "pads", web seed <base>/pub/: aria2 fetches <base>/pub/pads/<file>.
execFileSync(process.execPath, [BIN, 'make', '-l', '16K', '-w', `${base}/pub/`, '-o', unpadded, '--no-date', join(root, 'pub/pads')], { env, stdio: 'ignore' });

const ARIA2 = [
  '--no-conf',
  '--enable-dht=false',
  '--enable-dht6=false',
  '--bt-enable-lpd=false',
  '--enable-peer-exchange=false',
  '--disable-ipv6=true',
  '--interface=127.0.0.1',
  '--seed-time=0',
  '--check-integrity=true',
  '--file-allocation=none',
  '--auto-file-renaming=false',
  '--allow-overwrite=true',
  '--console-log-level=warn',
  '--summary-interval=0',
  '--show-console-readout=false',
  `--stop-with-process=${process.pid}`,
];

/** A TCP port free on 127.0.0.1 right now, for aria2's BitTorrent listener. */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer().once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

let run = 0;
/** One aria2c download into a fresh dir; milliseconds from start to exit. Checks every file. */
async function download(torrent, prefix) {
  const dir = join(work, `dl-${run++}`);
  const port = await freePort();
  const started = process.hrtime.bigint();
  const child = spawn('timeout', ['120s', 'aria2c', ...ARIA2, `--listen-port=${port}`, `--dir=${dir}`, torrent], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (out += c));
  const code = await new Promise((resolve) => child.on('exit', resolve));
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  children.delete(child);
  if (code !== 0) throw new Error(`aria2c ${torrent}: exit ${code}\n${out}`);
  for (const n of names) {
    if (!readFileSync(join(dir, prefix, n)).equals(readFileSync(join(root, 'pub/pads', n)))) throw new Error(`${torrent}: ${n} differs from the mirror`);
  }
  rmSync(dir, { recursive: true, force: true });
  return ms;
}

const onePads = bencode.decode(glob.body).info.files.filter((f) => f.length === 1 && f.attr).length;
console.log(`aria2c web-seed download, ${names.length} files, ${SIZES.reduce((a, b) => a + b, 0)} bytes, 16K pieces, ${onePads} one-byte pads; ${PAIRS} pairs`);
// Warm-up: page cache, piece cache, aria2's first start.
await download(padded, 'pub/pads');
await download(unpadded, 'pads');
const ratios = [];
for (let i = 0; i < PAIRS; i++) {
  let a, b;
  if (i % 2) {
    b = await download(unpadded, 'pads');
    a = await download(padded, 'pub/pads');
  } else {
    a = await download(padded, 'pub/pads');
    b = await download(unpadded, 'pads');
  }
  ratios.push(a / b);
  console.log(`  pair ${i + 1}: padded ${a.toFixed(0)} ms, unpadded ${b.toFixed(0)} ms, ratio ${(a / b).toFixed(2)}`);
}
const sorted = [...ratios].sort((x, y) => x - y);
const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2;
console.log(`padded/unpadded: median ${median.toFixed(2)}, range ${sorted[0].toFixed(2)}-${sorted.at(-1).toFixed(2)} (target <= 1.20)`);
process.exit(median <= 1.2 ? 0 : 1);
