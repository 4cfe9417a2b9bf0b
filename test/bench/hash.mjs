#!/usr/bin/env node
// Hashing throughput of `pkgtorrent make` against mktorrent on the same data,
// in the same run: one large file plus many 5 MiB files (a package pool),
// at least 1 GiB, in the page cache, every core for both tools.
//
//   npm run bench:hash            (builds first)
//   BENCH_DIR=/elsewhere BENCH_REPS=5 BENCH_GIB=4 node test/bench/hash.mjs
//
// The data is made once under bench-data/ (gitignored) and reused; delete the
// directory to get rid of it. Rates are whole-process wall clock (start-up
// included, as a user sees it) in MB/s (10^6 bytes per second).
import { spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, readSync, closeSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import bencode from 'bencode';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(REPO, 'bin/pkgtorrent');
const DATA = process.env.BENCH_DIR || join(REPO, 'bench-data');
const TREE = join(DATA, 'tree');
const REPS = Number(process.env.BENCH_REPS || 3);
const CORES = availableParallelism();

const MiB = 1024 * 1024;
// BENCH_GIB scales the data (default 1): half in one large file, the rest
// in 5 MiB files, one more than needed so the total is above the size.
const GIB = Number(process.env.BENCH_GIB || 1);
const LARGE = GIB * 512 * MiB;
const SMALL = 5 * MiB;
const SMALL_COUNT = Math.ceil((GIB * 512) / 5) + 1;
const LAYOUT = `v1 large=${LARGE} small=${SMALL}x${SMALL_COUNT}`;

function log(line) {
  process.stderr.write(line + '\n');
}

function writeRandom(path, size) {
  const buf = Buffer.allocUnsafe(8 * MiB);
  const fd = openSync(path, 'w');
  try {
    for (let left = size; left > 0; ) {
      const n = Math.min(left, buf.length);
      randomFillSync(buf, 0, n);
      writeSync(fd, buf, 0, n);
      left -= n;
    }
  } finally {
    closeSync(fd);
  }
}

/** Makes the data unless a complete set with the same layout is there. */
function ensureData() {
  const stamp = join(DATA, 'LAYOUT');
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === LAYOUT) return;
  log(`creating ${LAYOUT} under ${TREE} ...`);
  rmSync(TREE, { recursive: true, force: true });
  mkdirSync(join(TREE, 'pool'), { recursive: true });
  for (const [i, f] of files().entries()) writeRandom(f, i === 0 ? LARGE : SMALL);
  writeFileSync(stamp, LAYOUT);
}

function files() {
  const out = [join(TREE, 'large.iso')];
  for (let i = 0; i < SMALL_COUNT; i++) out.push(join(TREE, 'pool', `pkg-${String(i).padStart(4, '0')}.rpm`));
  return out;
}

/** Reads every byte once so both tools hash from the page cache, not the disk. */
function warm() {
  const buf = Buffer.allocUnsafe(8 * MiB);
  let total = 0;
  for (const f of files()) {
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

function timed(cmd, args, env = process.env) {
  const started = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * MiB, env });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return { seconds, stdout: r.stdout };
}

function infoHashOf(torrentPath) {
  const t = bencode.decode(readFileSync(torrentPath));
  return createHash('sha1').update(bencode.encode(t.info)).digest('hex');
}

function runMktorrent(out) {
  rmSync(out, { force: true });
  const { seconds } = timed('mktorrent', ['-t', String(CORES), '-l', '20', '-d', '-o', out, TREE]);
  return { seconds, infoHash: infoHashOf(out) };
}

function runPkgtorrent(out) {
  rmSync(out, { force: true });
  // Plain node, not via npm: no tap or ts-node loaders in NODE_OPTIONS.
  // No config file of the machine either: the flags say everything.
  const env = { ...process.env, PKGTORRENT_CONFIG: '' };
  delete env.NODE_OPTIONS;
  const { seconds, stdout } = timed(process.execPath, [BIN, 'make', '-j', String(CORES), '-l', '1M', '--no-date', '--json', '-o', out, TREE], env);
  return { seconds, infoHash: JSON.parse(stdout).infoHash };
}

function main() {
  if (spawnSync('sh', ['-c', 'command -v mktorrent'], { stdio: 'ignore' }).status !== 0) {
    log('mktorrent is not installed: apt-get install -y mktorrent');
    process.exit(1);
  }
  if (!existsSync(join(REPO, 'dist/cli/main.js'))) {
    log('dist/ is missing: run npm run build (npm run bench:hash does)');
    process.exit(1);
  }
  ensureData();
  const bytes = warm();
  const outDir = join(DATA, 'out');
  mkdirSync(outDir, { recursive: true });
  log(`data: ${files().length} files, ${(bytes / 1e6).toFixed(0)} MB; ${CORES} cores; best of ${REPS}`);

  const best = { mktorrent: Infinity, pkgtorrent: Infinity };
  const hashes = { mktorrent: new Set(), pkgtorrent: new Set() };
  // Alternate the tools so neither gets a systematically quieter machine.
  for (let i = 0; i < REPS; i++) {
    const m = runMktorrent(join(outDir, 'mktorrent.torrent'));
    const p = runPkgtorrent(join(outDir, 'pkgtorrent.torrent'));
    best.mktorrent = Math.min(best.mktorrent, m.seconds);
    best.pkgtorrent = Math.min(best.pkgtorrent, p.seconds);
    hashes.mktorrent.add(m.infoHash);
    hashes.pkgtorrent.add(p.infoHash);
    log(`  run ${i + 1}: mktorrent ${m.seconds.toFixed(3)}s, pkgtorrent ${p.seconds.toFixed(3)}s`);
  }
  const [mh] = hashes.mktorrent;
  const [ph] = hashes.pkgtorrent;
  const same = hashes.mktorrent.size === 1 && hashes.pkgtorrent.size === 1 && mh === ph;
  const rate = (s) => bytes / s / 1e6;
  const ratio = rate(best.pkgtorrent) / rate(best.mktorrent);
  console.log(`mktorrent -t ${CORES} -l 20:    ${rate(best.mktorrent).toFixed(0)} MB/s (${best.mktorrent.toFixed(3)}s)`);
  console.log(`pkgtorrent make -j ${CORES} -l 1M: ${rate(best.pkgtorrent).toFixed(0)} MB/s (${best.pkgtorrent.toFixed(3)}s)`);
  console.log(`ratio pkgtorrent/mktorrent: ${ratio.toFixed(3)}`);
  console.log(`info hash: ${same ? `equal (${mh})` : `DIFFERENT: mktorrent ${[...hashes.mktorrent]} pkgtorrent ${[...hashes.pkgtorrent]}`}`);
  rmSync(outDir, { recursive: true, force: true });
  if (!same) process.exit(1);
}

main();
