#!/usr/bin/env node
// Hashing throughput of `pkgtorrent make` against mktorrent on the same data,
// in the same run, as interleaved pairs: each round runs both tools once, the
// one that goes first alternating, and the pair's ratio (throughput
// pkgtorrent / mktorrent) is printed; then the median and range of the
// ratios. On a shared machine the load changes from second to second, so
// only a pair measured back to back says something; a best-of-N per tool
// would compare one tool's luckiest moment with the other's.
//
//   npm run bench:hash                          (builds first)
//   BENCH_SETS=256M,1G BENCH_ROUNDS=9 node test/bench/hash.mjs
//
// Data sets (BENCH_SETS, comma-separated; default all): 256M, 1G, 4G (one
// large file each) and 2000x512K (a directory of 2000 files of 512 KiB, a
// package pool). Generated under BENCH_DIR (default the system temp dir) in
// a pkgtorrent-bench-hash directory, never in the repository, and removed at
// the end unless BENCH_KEEP=1 (then reused by the next run). Both tools get
// the page cache equally warm: every file is read once before the rounds.
// Rates are whole-process wall clock (start-up included, as a user sees it)
// in MB/s (10^6 bytes per second); piece length 1 MiB for both; one hashing
// thread per core for both (mktorrent -t, make -j).
import { spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, realpathSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, relative, resolve, isAbsolute } from 'node:path';
import { fileURLToPath } from 'node:url';
import bencode from 'bencode';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(REPO, 'bin/pkgtorrent');
const CORES = availableParallelism();
// An empty variable counts as unset.
const ROUNDS = Number(process.env.BENCH_ROUNDS || 5);
const KEEP = process.env.BENCH_KEEP === '1';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const SETS = {
  '256M': { files: 1, size: 256 * MiB },
  '1G': { files: 1, size: GiB },
  '4G': { files: 1, size: 4 * GiB },
  '2000x512K': { files: 2000, size: 512 * KiB },
};

function log(line) {
  process.stderr.write(line + '\n');
}

function fail(line) {
  log(`bench:hash: ${line}`);
  process.exit(1);
}

function parseArgs() {
  if (!Number.isInteger(ROUNDS) || ROUNDS < 1) fail(`BENCH_ROUNDS must be a positive integer, not '${process.env.BENCH_ROUNDS}'`);
  const names = (process.env.BENCH_SETS || Object.keys(SETS).join(',')).split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) if (!(n in SETS)) fail(`unknown data set '${n}' in BENCH_SETS (known: ${Object.keys(SETS).join(', ')})`);
  const base = resolve(process.env.BENCH_DIR || tmpdir());
  mkdirSync(base, { recursive: true });
  const rel = relative(realpathSync(REPO), realpathSync(base));
  if (rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))) fail(`BENCH_DIR ${base} is inside the repository; generated data goes elsewhere`);
  return { names, data: join(base, 'pkgtorrent-bench-hash') };
}

/**
 * Writes `size` bytes whose every 16 KiB block differs (a counter stamped
 * into one random buffer): as good as random for SHA-1, and much faster to
 * make than fresh random bytes for gigabytes.
 */
function writeData(path, size, seed) {
  const buf = randomFillSync(Buffer.allocUnsafe(8 * MiB));
  const fd = openSync(path, 'w');
  try {
    let block = 0;
    for (let left = size; left > 0; ) {
      const n = Math.min(left, buf.length);
      for (let off = 0; off < n; off += 16 * KiB) buf.writeUInt32LE(block++, off), buf.writeUInt32LE(seed, off + 4);
      writeSync(fd, buf, 0, n);
      left -= n;
    }
  } finally {
    closeSync(fd);
  }
}

/** The set's input path (a file or a directory) and its files, made unless a complete copy is there. */
function ensureSet(data, name) {
  const { files, size } = SETS[name];
  const dir = join(data, name);
  const input = files === 1 ? join(dir, 'large.iso') : join(dir, 'pool');
  const list = files === 1 ? [input] : Array.from({ length: files }, (_, i) => join(input, `pkg-${String(i).padStart(4, '0')}-1.0-1.x86_64.rpm`));
  const stamp = join(dir, 'COMPLETE');
  if (existsSync(stamp) && list.every((f) => statSync(f, { throwIfNoEntry: false })?.size === size)) return { input, list };
  log(`creating ${name} (${files} x ${size} bytes) under ${dir} ...`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(files === 1 ? dir : input, { recursive: true });
  list.forEach((f, i) => writeData(f, size, i));
  writeFileSync(stamp, '');
  return { input, list };
}

/** Reads every byte once so both tools hash from the page cache, not the disk. */
function warm(list) {
  const buf = Buffer.allocUnsafe(8 * MiB);
  let total = 0;
  for (const f of list) {
    const fd = openSync(f, 'r');
    try {
      let n;
      while ((n = readSync(fd, buf, 0, buf.length, null)) > 0) total += n;
    } finally {
      closeSync(fd);
    }
  }
  return total;
}

// Run through bash's `time`, which reports the child's CPU seconds (user,
// system) on fd 3: on a busy machine wall clock is mostly waiting for a
// core, and the CPU time shows the work each tool did. bash costs both
// sides the same few milliseconds.
const TIMED = 'TIMEFORMAT="%3U %3S"; { time "$@" 2>&4 ; } 4>&2 2>&3';

function timed(cmd, args, env = process.env) {
  const started = process.hrtime.bigint();
  const r = spawnSync('bash', ['-c', TIMED, 'timed', cmd, ...args], { encoding: 'utf8', maxBuffer: 64 * MiB, env, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}`);
  const [user, sys] = r.output[3].trim().split(' ').map(Number);
  return { seconds, cpu: { user, sys }, stdout: r.stdout };
}

function infoHashOf(torrentPath) {
  const t = bencode.decode(readFileSync(torrentPath));
  return createHash('sha1').update(bencode.encode(t.info)).digest('hex');
}

const TOOLS = {
  mktorrent(input, out) {
    rmSync(out, { force: true });
    const { seconds, cpu } = timed('mktorrent', ['-t', String(CORES), '-l', '20', '-d', '-o', out, input]);
    return { seconds, cpu, infoHash: infoHashOf(out) };
  },
  pkgtorrent(input, out) {
    rmSync(out, { force: true });
    // Plain node, not via npm: no tap or ts-node loaders in NODE_OPTIONS.
    // No config file of the machine either: the flags say everything.
    const env = { ...process.env, PKGTORRENT_CONFIG: '' };
    delete env.NODE_OPTIONS;
    const { seconds, cpu, stdout } = timed(process.execPath, [BIN, 'make', '-j', String(CORES), '-l', '1M', '--no-date', '--json', '-o', out, input], env);
    return { seconds, cpu, infoHash: JSON.parse(stdout).infoHash };
  },
};

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const mbps = (bytes, s) => bytes / s / 1e6;

function benchSet(data, name) {
  const { input, list } = ensureSet(data, name);
  const bytes = warm(list);
  const outDir = join(data, 'out');
  mkdirSync(outDir, { recursive: true });
  const out = { mktorrent: join(outDir, 'mktorrent.torrent'), pkgtorrent: join(outDir, 'pkgtorrent.torrent') };
  console.log(`${name}: ${list.length} file${list.length === 1 ? '' : 's'}, ${(bytes / 1e6).toFixed(0)} MB, ${ROUNDS} pairs`);
  const pairs = [];
  const hashes = new Set();
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 ? ['pkgtorrent', 'mktorrent'] : ['mktorrent', 'pkgtorrent'];
    const r = {};
    for (const tool of order) r[tool] = TOOLS[tool](input, out[tool]);
    if (r.mktorrent.infoHash !== r.pkgtorrent.infoHash) {
      fail(`${name}: info hashes differ: mktorrent ${r.mktorrent.infoHash}, pkgtorrent ${r.pkgtorrent.infoHash}`);
    }
    hashes.add(r.mktorrent.infoHash);
    // Throughput ratio: the same bytes, so mktorrent's time over pkgtorrent's.
    const ratio = r.mktorrent.seconds / r.pkgtorrent.seconds;
    pairs.push({ ...r, ratio });
    console.log(
      `  pair ${round + 1} (${order[0]} first): ` +
        ['mktorrent', 'pkgtorrent'].map((t) => `${t} ${r[t].seconds.toFixed(3)} s ${mbps(bytes, r[t].seconds).toFixed(0)} MB/s (CPU ${r[t].cpu.user.toFixed(2)} user + ${r[t].cpu.sys.toFixed(2)} sys s)`).join(', ') +
        `, ratio ${ratio.toFixed(3)}`,
    );
  }
  if (hashes.size !== 1) fail(`${name}: the info hash changed between rounds: ${[...hashes].join(' ')}`);
  const ratios = pairs.map((p) => p.ratio);
  const res = {
    name,
    bytes,
    files: list.length,
    mk: median(pairs.map((p) => mbps(bytes, p.mktorrent.seconds))),
    pk: median(pairs.map((p) => mbps(bytes, p.pkgtorrent.seconds))),
    median: median(ratios),
    min: Math.min(...ratios),
    cpu: Object.fromEntries(
      ['mktorrent', 'pkgtorrent'].map((t) => [t, `${median(pairs.map((p) => p[t].cpu.user)).toFixed(2)}+${median(pairs.map((p) => p[t].cpu.sys)).toFixed(2)}`]),
    ),
    max: Math.max(...ratios),
    infoHash: [...hashes][0],
  };
  console.log(`  ratio pkgtorrent/mktorrent: median ${res.median.toFixed(3)}, range ${res.min.toFixed(3)}-${res.max.toFixed(3)}; info hash equal in every pair (${res.infoHash})`);
  rmSync(outDir, { recursive: true, force: true });
  // Unless kept, a set goes as soon as it is measured: the next one gets the page cache and the disk.
  if (!KEEP) rmSync(join(data, name), { recursive: true, force: true });
  return res;
}

/**
 * One core's SHA-1 rate in this node and, if the openssl tool is there, in
 * the system's libcrypto (what mktorrent links): the ceiling of each side,
 * printed so a ratio far from 1 can be read. Both are per CPU second, not
 * per wall-clock second (openssl speed divides by user CPU time unless
 * -elapsed), so a busy machine does not distort them.
 */
function sha1Ceilings() {
  const buf = randomFillSync(Buffer.allocUnsafe(MiB));
  const before = process.cpuUsage();
  for (let i = 0; i < 256; i++) createHash('sha1').update(buf).digest();
  const used = process.cpuUsage(before);
  const nodeRate = (256 * MiB) / ((used.user + used.system) / 1e6) / 1e6;
  const r = spawnSync('openssl', ['speed', '-seconds', '1', '-bytes', String(MiB), '-evp', 'sha1'], { encoding: 'utf8' });
  const m = /^sha1\s+([\d.]+)k/m.exec(r.stdout ?? '');
  const libRate = m ? (Number(m[1]) * 1000) / 1e6 : null;
  return `SHA-1 per CPU second, 1 MiB pieces: node ${process.version} (OpenSSL ${process.versions.openssl}) ${nodeRate.toFixed(0)} MB/s; ` +
    (libRate ? `system libcrypto (openssl speed) ${libRate.toFixed(0)} MB/s` : 'openssl tool missing, libcrypto rate not measured');
}

function main() {
  const { names, data } = parseArgs();
  if (spawnSync('sh', ['-c', 'command -v mktorrent'], { stdio: 'ignore' }).status !== 0) fail('mktorrent is not installed: apt-get install -y mktorrent');
  if (!existsSync(join(REPO, 'dist/cli/main.js'))) fail('dist/ is missing: run npm run build (npm run bench:hash does)');
  mkdirSync(data, { recursive: true });
  if (!KEEP) {
    process.on('exit', () => rmSync(data, { recursive: true, force: true }));
    for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));
  }
  // One untimed run of each tool on a tiny file: their binaries and
  // pkgtorrent's modules come from the page cache in every timed run.
  const tiny = join(data, 'tiny.bin');
  writeData(tiny, 64 * KiB, 0);
  for (const [tool, run] of Object.entries(TOOLS)) run(tiny, join(data, `tiny-${tool}.torrent`));
  const started = Date.now();
  console.log(`pkgtorrent make -j ${CORES} -l 1M against mktorrent -t ${CORES} -l 20, interleaved pairs (first tool alternating), page cache warm; ${new Date().toISOString()}`);
  console.log(sha1Ceilings());
  const results = names.map((n) => benchSet(data, n));
  console.log('');
  console.log('| data | mktorrent (median) | pkgtorrent (median) | ratio median | ratio range | CPU s user+sys, mktorrent / pkgtorrent (medians) |');
  console.log('|---|---|---|---|---|---|');
  for (const r of results) {
    const what = r.files === 1 ? `${r.name}, one file` : `${r.name}, ${r.files} files`;
    console.log(`| ${what} (${(r.bytes / 1e6).toFixed(0)} MB) | ${r.mk.toFixed(0)} MB/s | ${r.pk.toFixed(0)} MB/s | ${r.median.toFixed(2)} | ${r.min.toFixed(2)}-${r.max.toFixed(2)} | ${r.cpu.mktorrent} / ${r.cpu.pkgtorrent} |`);
  }
  console.log(`(${ROUNDS} pairs per set; ${((Date.now() - started) / 1000).toFixed(0)} s including data generation)`);
  if (KEEP) log(`data kept under ${data} (BENCH_KEEP=1)`);
}

main();
