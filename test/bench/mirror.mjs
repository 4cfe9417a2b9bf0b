#!/usr/bin/env node
// Per-file costs on a package mirror: many small files. Paired, interleaved
// rounds of pkgtorrent against a reference doing the same work, same run:
//
//   cold `hash`  vs  a Python hashlib (OpenSSL) loop over the same files,
//                    each file's tail hashed plain and padded with zeros to the
//                    piece length, as the service layout does: the same SHA-1 work
//   warm `hash`  vs  find -printf '%s %T@\n' (one stat per file)
//   make         vs  mktorrent, 256 KiB pieces, on the small-file tree (time, max RSS)
//   make         vs  mktorrent on a directory of 2000 x 512 KiB files
//
//   npm run bench:mirror                 (10,000 files of 4 KiB, 100 per directory)
//   BENCH_FILES=100000 BENCH_ROUNDS=5 npm run bench:mirror
//   BENCH_DIR=/elsewhere  BENCH_BIG=0 (skip the 512 KiB directory)  BENCH_KEEP=1
//   BENCH_MAKE=0 (hash rows only)
//
// The fixture is made under BENCH_DIR (default: a directory in the system's
// temp dir, reused while its layout matches; BENCH_KEEP=0 removes it at the
// end). Nothing drops the page cache: every file is read once before each
// round so both sides of a pair start equally warm. Caches are removed only
// after the last round (see below). CPU is user+system time
// of the process and its children (getrusage), wall is monotonic elapsed time.
import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
// BENCH_BIN: another build's launcher (a before/after comparison).
const BIN = process.env.BENCH_BIN || join(REPO, 'bin/pkgtorrent');
const FILES = Number(process.env.BENCH_FILES || 10000);
const PER_DIR = 100;
const FILE_SIZE = 4096;
const BIG_FILES = Number(process.env.BENCH_BIG ?? 2000);
const BIG_SIZE = 512 * 1024;
const ROUNDS = Number(process.env.BENCH_ROUNDS || 3);
const MAKE = process.env.BENCH_MAKE !== '0';
const DATA = process.env.BENCH_DIR || join(tmpdir(), 'pkgtorrent-bench-mirror');
const KEEP = process.env.BENCH_KEEP !== '0';
const SERVICE_PIECE = 1024 * 1024; // hash's default piece length

const TREE = join(DATA, 'tree');
const BIG = join(DATA, 'big');
const LAYOUT = `v1 files=${FILES}x${FILE_SIZE}/${PER_DIR} big=${MAKE ? BIG_FILES : 0}x${BIG_SIZE}`;

const log = (line) => process.stderr.write(line + '\n');

function ensureData() {
  const stamp = join(DATA, 'LAYOUT');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === LAYOUT) return;
  log(`creating ${LAYOUT} under ${DATA} ...`);
  rmSync(DATA, { recursive: true, force: true });
  mkdirSync(DATA, { recursive: true });
  const buf = Buffer.allocUnsafe(Math.max(FILE_SIZE, BIG_SIZE));
  for (let i = 0; i < FILES; i++) {
    const dir = join(TREE, `d${String(Math.floor(i / PER_DIR)).padStart(5, '0')}`);
    if (i % PER_DIR === 0) mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `pkg-${String(i % PER_DIR).padStart(3, '0')}.rpm`), randomFillSync(buf, 0, FILE_SIZE).subarray(0, FILE_SIZE));
  }
  if (BIG_FILES && MAKE) {
    mkdirSync(BIG, { recursive: true });
    for (let i = 0; i < BIG_FILES; i++) writeFileSync(join(BIG, `pkg-${String(i).padStart(4, '0')}.rpm`), randomFillSync(buf, 0, BIG_SIZE));
  }
  writeFileSync(stamp, LAYOUT);
}

function walk(dir, out = []) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

/** Reads every byte of a tree, so a pair's two sides start from the same page cache. */
function warm(dir) {
  const buf = Buffer.allocUnsafe(1024 * 1024);
  for (const f of walk(dir)) {
    const fd = openSync(f, 'r');
    try {
      while (readSync(fd, buf, 0, buf.length, null) > 0);
    } finally {
      closeSync(fd);
    }
  }
}

// Runs a command under a small Python wrapper that reports the children's
// user+system CPU and max RSS (getrusage) and the wall time.
const MEASURE = `
import resource, subprocess, sys, time
t = time.monotonic()
r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)
w = time.monotonic() - t
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(r.returncode, w, u.ru_utime + u.ru_stime, u.ru_maxrss, u.ru_stime)
`;

function measure(argv) {
  const r = spawnSync('/usr/bin/python3', ['-c', MEASURE, ...argv], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const [code, wall, cpu, rssKiB, sys] = r.stdout.trim().split(' ').map(Number);
  if (r.status !== 0 || code !== 0) throw new Error(`${argv.join(' ')} failed (exit ${code ?? r.status})`);
  return { wall, cpu, rss: rssKiB * 1024, sys };
}

// The reference for a cold hash: OpenSSL's SHA-1 (hashlib) over the same
// bytes the service layout hashes, one process per core on interleaved files.
const REFERENCE = `
import hashlib, os, sys
root, piece, part, parts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
zeros = bytes(piece)
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs)
for path in files[part::parts]:
    with open(path, 'rb') as fh:
        data = fh.read()
    full = len(data) // piece * piece
    for off in range(0, full, piece):
        hashlib.sha1(data[off:off + piece]).digest()
    if full < len(data):
        h = hashlib.sha1(data[full:])
        p = h.copy()
        p.update(zeros[:piece - (len(data) - full)])
        h.digest(); p.digest()
`;
const CORES = 2;
const referenceArgv = () => [
  '/bin/sh',
  '-c',
  Array.from({ length: CORES }, (_, i) => `/usr/bin/python3 -c "$0" ${TREE} ${SERVICE_PIECE} ${i} ${CORES} &`).join(' ') + ' wait',
  REFERENCE,
];

const pairs = new Map();
/** make's max RSS on a tenth of the tree, per round. */
const baseRss = [];
const BASE_DIRS = Math.max(1, Math.floor(FILES / PER_DIR / 10));
function record(name, ref, ours, what) {
  if (!pairs.has(name)) pairs.set(name, { what, rows: [] });
  pairs.get(name).rows.push({ ref, ours });
}

function stats(values) {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return { median: s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2, min: s[0], max: s[s.length - 1] };
}
const fmt = (x, d = 2) => x.toFixed(d);

function main() {
  spawnSync('/bin/sh', ['-c', 'command -v mktorrent'], { stdio: 'ignore' }).status === 0 || (log('mktorrent is not installed'), process.exit(2));
  ensureData();
  const scratch = mkdtempSync(join(tmpdir(), 'pkgtorrent-bench-run-'));
  log(`${FILES} files of ${FILE_SIZE} B (${PER_DIR} per directory), ${ROUNDS} paired rounds, order alternating`);
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const flip = round % 2 === 1;
      const pair = (a, b) => (flip ? [b(), a()].reverse() : [a(), b()]);

      // Cold hash: a fresh cache each time.
      warm(TREE);
      const cache = join(scratch, `cache-${round}`);
      const [ref, cold] = pair(
        () => measure(referenceArgv()),
        () => measure([process.execPath, BIN, 'hash', '--root', TREE, '--cache-dir', cache, '--quiet']),
      );
      record('cold hash CPU', ref.cpu, cold.cpu, 'cpu');
      // System time is the file system's share (directories and entries made), and what other load disturbs most.
      pairs.get('cold hash CPU').rows.at(-1).sys = [ref.sys, cold.sys];
      record('cold hash wall', ref.wall, cold.wall, 'wall');
      pairs.get('cold hash wall').rows.at(-1).cores = cold.cpu / cold.wall;

      // Warm hash: the cache just filled, nothing changed.
      const [find, warmRun] = pair(
        () => measure(['find', TREE, '-printf', '%s %T@\\n']),
        () => measure([process.execPath, BIN, 'hash', '--root', TREE, '--cache-dir', cache, '--quiet']),
      );
      record('warm hash wall', find.wall, warmRun.wall, 'wall');
      record('warm hash CPU', find.cpu, warmRun.cpu, 'cpu');
      // The caches stay until the end: ext4 makes new inodes slowly for
      // minutes after many were deleted (it scans past recently freed ones),
      // which charged a cold hash right after an rm -rf up to twice its CPU.

      if (!MAKE) {
        log(`round ${round + 1}/${ROUNDS} done`);
        continue;
      }
      // make on the small-file tree, mktorrent layout, 256 KiB pieces.
      warm(TREE);
      const out = (n) => join(scratch, n);
      const [mk, ours] = pair(
        () => measure(['mktorrent', '-a', 'http://127.0.0.1/announce', '-l', '18', '-t', String(CORES), '-o', out('mk.torrent'), TREE]),
        () => measure([process.execPath, BIN, 'make', '-a', 'http://127.0.0.1/announce', '-l', '256K', '-j', String(CORES), '--force', '-o', out('pt.torrent'), TREE]),
      );
      rmSync(out('mk.torrent'), { force: true });
      // Per-file memory is what a larger tree adds: RSS above make on a tenth
      // of the tree (symlinks to its first directories), which also starts
      // the hash worker, so a thread's fixed memory is not counted per file.
      const part = join(scratch, 'tenth');
      if (!existsSync(part)) {
        mkdirSync(part);
        for (const d of readdirSync(TREE).sort().slice(0, BASE_DIRS)) symlinkSync(join(TREE, d), join(part, d));
      }
      const tenth = measure([process.execPath, BIN, 'make', '-a', 'http://127.0.0.1/announce', '-l', '256K', '-j', String(CORES), '--force', '-o', out('tenth.torrent'), part]);
      baseRss.push(tenth.rss);
      record('make small wall', mk.wall, ours.wall, 'wall');
      record('make small CPU', mk.cpu, ours.cpu, 'cpu');
      record('make small RSS', mk.rss, ours.rss, 'rss');

      if (BIG_FILES) {
        warm(BIG);
        const [mkb, oursb] = pair(
          () => measure(['mktorrent', '-a', 'http://127.0.0.1/announce', '-l', '18', '-t', String(CORES), '-o', out('mkb.torrent'), BIG]),
          () => measure([process.execPath, BIN, 'make', '-a', 'http://127.0.0.1/announce', '-l', '256K', '-j', String(CORES), '--force', '-o', out('ptb.torrent'), BIG]),
        );
        rmSync(out('mkb.torrent'), { force: true });
        record('make 512K wall', mkb.wall, oursb.wall, 'wall');
        record('make 512K CPU', mkb.cpu, oursb.cpu, 'cpu');
      }
      log(`round ${round + 1}/${ROUNDS} done`);
    }
    // Before the clean-up: removing a 100k-file run's caches takes minutes.
    report();
  } finally {
    log('removing the caches ...');
    rmSync(scratch, { recursive: true, force: true });
    if (!KEEP) rmSync(DATA, { recursive: true, force: true });
  }
}

const TARGETS = {
  'cold hash CPU': { label: 'cold hash CPU / OpenSSL reference CPU', target: '<= 1.3' },
  'cold hash wall': { label: 'cold hash wall / reference wall (2 processes)', target: 'both cores busy' },
  'warm hash wall': { label: 'warm hash wall / find -printf wall', target: '<= 4' },
  'warm hash CPU': { label: 'warm hash CPU / find CPU', target: '(the target is on wall)' },
  'make small wall': { label: 'make wall / mktorrent wall, small files', target: '<= 1.5' },
  'make small CPU': { label: 'make CPU / mktorrent CPU, small files', target: '(the target is on wall)' },
  'make small RSS': { label: 'make max RSS / mktorrent max RSS, small files', target: '<= 1 KiB per file' },
  'make 512K wall': { label: 'mktorrent wall / make wall (speed), 2000 x 512 KiB', target: '>= 0.95', invert: true },
  'make 512K CPU': { label: 'mktorrent CPU / make CPU, 2000 x 512 KiB', target: '(the target is on wall)', invert: true },
};

function report() {
  // Wall times on a shared machine carry everyone's load; CPU ratios less so.
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
  console.log(`\nmirror bench: ${FILES} files x ${FILE_SIZE} B, ${ROUNDS} rounds, load average ${load} (ratio: median [min..max])`);
  for (const [name, { what, rows }] of pairs) {
    const t = TARGETS[name];
    const ratios = rows.map((r) => (t.invert ? r.ref / r.ours : r.ours / r.ref));
    const r = stats(ratios);
    const ours = stats(rows.map((x) => x.ours));
    const ref = stats(rows.map((x) => x.ref));
    let detail;
    if (what === 'rss') {
      const base = stats(baseRss).median;
      detail = `ours ${fmt(ours.median / 2 ** 20, 1)} MiB, ${fmt((ours.median - base) / (FILES - BASE_DIRS * PER_DIR), 0)} B/file above ${fmt(base / 2 ** 20, 1)} MiB for ${BASE_DIRS * PER_DIR} files; ref ${fmt(ref.median / 2 ** 20, 1)} MiB`;
    } else {
      const perFile = name.startsWith('make 512K') ? '' : `, ${fmt((ours.median / FILES) * 1e6, 1)} us/file`;
      detail = `ours ${fmt(ours.median, 3)} s${perFile}, ref ${fmt(ref.median, 3)} s`;
      if (rows[0].cores !== undefined) detail += `, cores busy ${fmt(stats(rows.map((x) => x.cores)).median)}`;
      if (rows[0].sys !== undefined) {
        detail += `; system time ours ${fmt(stats(rows.map((x) => x.sys[1])).median, 3)} s, ref ${fmt(stats(rows.map((x) => x.sys[0])).median, 3)} s`;
      }
    }
    console.log(`${t.label.padEnd(52)} ${fmt(r.median)} [${fmt(r.min)}..${fmt(r.max)}]  target ${t.target};  ${detail}`);
    console.log(`${''.padEnd(52)} pairs in order: ${ratios.map((x) => fmt(x)).join(' ')}`);
  }
}

main();
