// `pkgtorrent cache clean` and `cache stats`: what goes, what stays, and that
// cleaning beside a running `hash` leaves a cache every reader accepts.
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, unlinkSync, utimesSync, writeFileSync, lstatSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { bin, cli } from './helpers/cli.js';
import { decodeEntry, PieceCache } from '../src/core/piece-cache.js';
import { MirrorRoot } from '../src/core/root.js';
import { encodeInfoEntry, readInfoEntry } from '../src/core/info-entry.js';
import { sha1 } from '../src/core/metainfo.js';
import { TEMP_MARKER } from '../src/core/atomic.js';
import { checkTextfile, textfileSamples } from './helpers/textfile.js';

const PL = 16384;
const DAY = 86400_000;

function ago(path: string, ms: number): void {
  const d = new Date(Date.now() - ms);
  utimesSync(path, d, d);
}

/** Every file and directory under dir (lstat, no symlinks followed), sorted. */
function listing(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      out.push(relative(dir, p) + (e.isDirectory() ? '/' : ''));
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

function infoEntry(files: Array<{ rel: string; size: number; mtimeNs: bigint }>): Buffer {
  const bytes = Buffer.from('d4:name1:xe');
  return encodeInfoEntry({
    kind: files.length === 1 ? 'single' : 'multi',
    pieceLength: PL,
    serviceName: 'torrent_service',
    name: 'x',
    webSeedSuffix: '',
    bytes,
    infoHash: sha1(bytes),
    files,
  });
}

/**
 * A hashed tree, then one case of everything clean must judge:
 *   a.rpm          untouched, recently used           kept
 *   b.rpm          deleted from the root              source-gone
 *   c.rpm          rewritten (new mtime)              source-changed
 *   d/e.rpm        entry not used for 40 days         unused
 *   pieces/junk    entry that fails validation        corrupt
 *   temp files     2h old: leftover; fresh: kept (a write in progress)
 *   info entries   valid and kept / source gone / corrupt; locks old and fresh
 *   symlinks       to a file and a dir outside the cache: never followed
 */
async function fixture(t: Test) {
  const dir = t.testdir({
    root: { 'a.rpm': randomBytes(40_000), 'b.rpm': randomBytes(20_000), 'c.rpm': randomBytes(100), d: { 'e.rpm': randomBytes(17_000) } },
    cache: {},
    outside: { 'precious': 'do not touch', sub: { [String(PL)]: 'not an entry of ours' } },
  });
  const root = join(dir, 'root');
  const cache = join(dir, 'cache');
  const hashed = await cli(['hash', '--root', root, '--cache-dir', cache, '--piece-length', '16K']);
  t.equal(hashed.code, 0, hashed.stderr);
  const entry = (rel: string) => join(cache, 'pieces', rel, String(PL));

  const a = (await MirrorRoot.open(root)).file('a.rpm');
  unlinkSync(join(root, 'b.rpm'));
  const c = join(root, 'c.rpm');
  utimesSync(c, new Date(), new Date(statSync(c).mtimeMs + 5000));
  ago(entry('d/e.rpm'), 40 * DAY);
  mkdirSync(join(cache, 'pieces/junk'));
  writeFileSync(entry('junk'), 'garbage, not an entry');
  const oldTemp = join(cache, 'pieces/a.rpm', `.${PL}${TEMP_MARKER}1-0123456789ab`);
  writeFileSync(oldTemp, 'half a write');
  ago(oldTemp, 2 * 3600_000);
  const freshTemp = join(cache, 'pieces/a.rpm', `.${PL}${TEMP_MARKER}2-0123456789ab`);
  writeFileSync(freshTemp, 'a write in progress');

  const info = join(cache, 'info');
  mkdirSync(info);
  const keyKept = 'a'.repeat(40);
  const keyGone = 'b'.repeat(40) + '_s';
  const keyCorrupt = 'c'.repeat(40);
  writeFileSync(join(info, keyKept), infoEntry([{ rel: a.rel, size: a.size, mtimeNs: a.mtimeNs }]));
  writeFileSync(join(info, keyGone), infoEntry([{ rel: 'b.rpm', size: 20_000, mtimeNs: 1n }]));
  writeFileSync(join(info, keyCorrupt), infoEntry([{ rel: a.rel, size: a.size, mtimeNs: a.mtimeNs }]).subarray(0, 50));
  const oldLock = join(info, `${'d'.repeat(40)}.lock`);
  writeFileSync(oldLock, JSON.stringify({ pid: 999999, host: 'elsewhere', token: 'x' }));
  ago(oldLock, 2 * 3600_000);
  const freshLock = join(info, `${keyKept}.lock`);
  writeFileSync(freshLock, JSON.stringify({ pid: process.pid, host: 'elsewhere', token: 'y' }));
  writeFileSync(join(info, 'README'), 'an operator note: not ours, left alone');

  symlinkSync(join(dir, 'outside/precious'), join(cache, 'pieces/a.rpm', '65536'));
  symlinkSync(join(dir, 'outside/sub'), join(cache, 'pieces/linked'));
  ago(join(dir, 'outside/sub', String(PL)), 400 * DAY);
  return { dir, root, cache, entry, oldTemp, freshTemp, oldLock, freshLock, keyKept, keyGone, keyCorrupt, a };
}

t.test('dry run lists everything clean would remove and removes nothing', async (t) => {
  const f = await fixture(t);
  const before = listing(f.dir);
  const r = await cli(['cache', 'clean', '--root', f.root, '--cache-dir', f.cache, '--dry-run']);
  t.equal(r.code, 0, r.stderr);
  t.same(listing(f.dir), before, 'nothing removed, nothing added');
  const lines = r.stdout.trim().split('\n');
  t.match(lines.at(-1), /^dry run: would remove 6 entries \(1 unused, 2 source gone, 1 source changed, 2 corrupt\), 2 leftovers, 5 empty directories; .* would be freed; 2 entries kept$/);
  t.ok(lines.includes('would remove pieces/b.rpm/16384 (source gone: b.rpm)'), r.stdout);
  t.ok(lines.includes('would remove pieces/b.rpm (empty directory)'));
  t.ok(lines.includes('would remove pieces/d (empty directory)'), 'a directory emptied only by removals counts as empty');
  t.notOk(r.stdout.includes('outside') || r.stdout.includes('linked'), 'symlinks are not followed or removed');

  const j = JSON.parse((await cli(['cache', 'clean', '--root', f.root, '--cache-dir', f.cache, '--dry-run', '--json'])).stdout);
  t.equal(j.dryRun, true);
  t.same(listing(f.dir), before);
  t.same(j.skipped, ['pieces/a.rpm/65536', 'pieces/linked']);
});

t.test('removes stale, unused, corrupt entries, leftovers and empty dirs; keeps the rest', async (t) => {
  const f = await fixture(t);
  const r = await cli(['cache', 'clean', '--root', f.root, '--cache-dir', f.cache, '--json']);
  t.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  const byPath = Object.fromEntries(j.removed.map((m: { path: string; reason: string }) => [m.path, m.reason]));
  t.same(byPath, {
    'pieces/b.rpm/16384': 'source-gone',
    'pieces/b.rpm': 'empty-dir',
    'pieces/c.rpm/16384': 'source-changed',
    'pieces/c.rpm': 'empty-dir',
    'pieces/d/e.rpm/16384': 'unused',
    'pieces/d/e.rpm': 'empty-dir',
    'pieces/d': 'empty-dir',
    'pieces/junk/16384': 'corrupt',
    'pieces/junk': 'empty-dir',
    [`pieces/a.rpm/${relative(join(f.cache, 'pieces/a.rpm'), f.oldTemp)}`]: 'leftover',
    [`info/${f.keyGone}`]: 'source-gone',
    [`info/${f.keyCorrupt}`]: 'corrupt',
    [`info/${'d'.repeat(40)}.lock`]: 'leftover',
  });
  t.equal(j.entries, 6);
  t.equal(j.leftovers, 2);
  t.equal(j.dirs, 5);
  t.equal(j.kept, 2);
  t.ok(j.bytes > 0);

  t.same(listing(f.cache), [
    'info/',
    'info/README',
    `info/${f.keyKept}`,
    `info/${f.keyKept}.lock`,
    'pieces/',
    'pieces/a.rpm/',
    `pieces/a.rpm/${relative(join(f.cache, 'pieces/a.rpm'), f.freshTemp)}`,
    'pieces/a.rpm/16384',
    'pieces/a.rpm/65536',
    'pieces/linked',
  ]);
  t.ok(await new PieceCache(f.cache).get('a.rpm', PL, f.a), 'the kept piece entry is still valid');
  t.ok(readInfoEntry(join(f.cache, 'info', f.keyKept)), 'the kept info entry is still valid');
  t.equal(readFileSync(join(f.dir, 'outside/precious'), 'utf8'), 'do not touch');
  t.ok(existsSync(join(f.dir, 'outside/sub', String(PL))), 'nothing behind a symlinked directory is touched');
  t.ok(lstatSync(join(f.cache, 'pieces/linked')).isSymbolicLink());

  const again = await cli(['cache', 'clean', '--root', f.root, '--cache-dir', f.cache]);
  t.equal(again.code, 0);
  t.match(again.stdout, /^removed 0 entries, 0 leftovers, 0 empty directories; 0 B freed; 2 entries kept\n$/, 'a second run finds nothing');
});

t.test('without an explicit root, source files are not checked', async (t) => {
  const f = await fixture(t);
  // cwd is the root's parent: a default root of '.' would make every entry look orphaned.
  const r = await cli(['cache', 'clean', '--cache-dir', f.cache, '--json'], { cwd: f.dir });
  t.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  t.equal(j.checkedSources, false);
  t.same(j.removed.filter((m: { reason: string }) => m.reason.startsWith('source')), []);
  t.ok(existsSync(f.entry('b.rpm')), 'entry of a deleted file kept without --root');
  t.notOk(existsSync(f.entry('d/e.rpm')), 'unused entries still go');
  const text = await cli(['cache', 'clean', '--cache-dir', f.cache, '--dry-run'], { cwd: f.dir });
  t.match(text.stdout, /source files not checked \(no --root\)\n$/);

  // PKGTORRENT_ROOT is an explicit root too.
  const env = await cli(['cache', 'clean', '--cache-dir', f.cache, '--json'], { cwd: f.dir, vars: { PKGTORRENT_ROOT: f.root } });
  t.equal(JSON.parse(env.stdout).checkedSources, true);
  t.notOk(existsSync(f.entry('b.rpm')));
});

t.test('--older-than and --leftover-age take units', async (t) => {
  const f = await fixture(t);
  ago(f.entry('a.rpm'), 13 * 3600_000);
  const keep = JSON.parse((await cli(['cache', 'clean', '--cache-dir', f.cache, '--older-than', '1d', '--leftover-age', '3h', '--dry-run', '--json'])).stdout);
  t.notOk(keep.removed.some((m: { path: string }) => m.path === 'pieces/a.rpm/16384'));
  t.notOk(keep.removed.some((m: { reason: string }) => m.reason === 'leftover'), 'a 2h old temp file is young under --leftover-age 3h');
  const go = JSON.parse((await cli(['cache', 'clean', '--cache-dir', f.cache, '--older-than', '12h', '--dry-run', '--json'])).stdout);
  t.ok(go.removed.some((m: { path: string; reason: string }) => m.path === 'pieces/a.rpm/16384' && m.reason === 'unused'));

  for (const bad of [['--older-than', '30x'], ['--leftover-age', 'soon']]) {
    const r = await cli(['cache', 'clean', '--cache-dir', f.cache, ...bad]);
    t.equal(r.code, 2, `${bad.join(' ')} is bad usage`);
    t.match(r.stderr, new RegExp(`^pkgtorrent: invalid ${bad[0]} '${bad[1]}'`));
    t.equal(r.stderr.trim().split('\n').length, 1);
  }
});

t.test('a file that cannot be removed is reported and the run exits 1', async (t) => {
  const f = await fixture(t);
  const args = ['cache', 'clean', '--root', f.root, '--cache-dir', f.cache];
  mkdirSync(join(f.cache, 'pieces/private'));
  writeFileSync(join(f.cache, 'pieces/private', String(PL)), 'unreadable');
  chmodSync(join(f.cache, 'pieces/junk'), 0o555);
  chmodSync(join(f.cache, 'pieces/private'), 0o000);
  const r = await bin(args, { permissionsApply: true });
  // Restored at once: the fixture's own clean-up may run before a teardown.
  chmodSync(join(f.cache, 'pieces/junk'), 0o755);
  chmodSync(join(f.cache, 'pieces/private'), 0o755);
  t.equal(r.code, 1, r.stdout);
  t.match(r.stderr, /^pkgtorrent: pieces\/junk\/16384: cannot remove: permission denied$/m);
  t.match(r.stderr, /^pkgtorrent: pieces\/private: cannot read: permission denied$/m, 'an unreadable directory is reported');
  t.match(r.stdout, /; \d+ errors?\n$/, 'the run went on to the end');
  t.ok(existsSync(f.entry('junk')));
});

t.test('an explicit cache dir must exist; nothing is created', async (t) => {
  const dir = t.testdir({ file: 'x' });
  for (const sub of ['clean', 'stats']) {
    const r = await cli(['cache', sub, '--cache-dir', join(dir, 'typo')]);
    t.equal(r.code, 1);
    t.equal(r.stderr, `pkgtorrent: cache dir ${join(dir, 'typo')}: no such file or directory\n`);
    t.notOk(existsSync(join(dir, 'typo')));
    const f = await cli(['cache', sub, '--cache-dir', join(dir, 'file')]);
    t.equal(f.code, 2);
    t.equal(f.stderr, `pkgtorrent: cache dir ${join(dir, 'file')}: not a directory\n`);
  }
});

t.test('cache stats counts by kind', async (t) => {
  const f = await fixture(t);
  const r = await cli(['cache', 'stats', '--cache-dir', f.cache, '--json']);
  t.equal(r.code, 0, r.stderr);
  const s = JSON.parse(r.stdout);
  t.equal(s.kinds.piece.files, 5, 'a, b, c, d/e and junk (stats reads no entry)');
  t.equal(s.kinds.info.files, 3);
  t.equal(s.kinds.temp.files, 2);
  t.equal(s.kinds.lock.files, 2);
  t.equal(s.kinds.other.files, 1);
  t.equal(s.skipped, 2);
  t.equal(s.pieceLengths[String(PL)].files, 5);
  t.equal(Math.round((Date.now() - s.kinds.piece.oldestUseMs) / DAY), 40, 'oldest use is the unused entry');
  t.equal(s.total.files, 13);
  const text = await cli(['cache', 'stats', '--cache-dir', f.cache]);
  t.match(text.stdout, /^cache dir .*\nKIND +FILES +BYTES +OLDEST USE +NEWEST USE\npiece +5 /);
  t.match(text.stdout, /piece entries by piece length: 16\.0 KiB: 5\n/);
});

t.test('cleaning while hash fills the same cache leaves a valid cache', async (t) => {
  // Many small files in many directories, so hash writes entries while clean
  // removes them and their directories: the rmdir/mkdir races happen here.
  const files: Record<string, Record<string, Buffer>> = {};
  for (let d = 0; d < 12; d++) {
    files[`d${d}`] = {};
    for (let i = 0; i < 8; i++) files[`d${d}`]![`f${i}.rpm`] = randomBytes(1000 + d * 100 + i);
  }
  const dir = t.testdir({ root: files, cache: {} });
  const root = join(dir, 'root');
  const cache = join(dir, 'cache');
  const hashArgs = ['hash', '--root', root, '--cache-dir', cache, '--piece-length', '16K', '--jobs', '2', '--json'];
  let cleans = 0;
  for (let round = 0; round < 3; round++) {
    // Clean over and over while hash runs; --older-than 0s: clean wants every
    // entry and directory gone while hash makes them.
    let done = false;
    const hashing = cli(hashArgs).finally(() => (done = true));
    while (!done) {
      const c = await cli(['cache', 'clean', '--root', root, '--cache-dir', cache, '--older-than', '0s', '--quiet']);
      if (c.code !== 0) t.fail(`round ${round}: clean failed: ${c.stderr}`);
      cleans++;
    }
    const h = await hashing;
    t.equal(h.code, 0, `round ${round}: hash never fails because of clean: ${h.stderr}`);
    t.same(JSON.parse(h.stdout).errors, []);
  }
  t.ok(cleans >= 3, `${cleans} cleans ran during hashing`);
  // Whatever survived is a complete, valid entry: no temp files, nothing corrupt.
  const left = listing(cache).filter((p) => !p.endsWith('/'));
  t.notOk(left.some((p) => p.includes(TEMP_MARKER)), 'no temp files left behind');
  for (const p of left) t.ok(decodeEntry(readFileSync(join(cache, p))), `${p} decodes`);
  const final = JSON.parse((await cli(hashArgs)).stdout);
  t.equal(final.filesHashed + final.filesCached, 96);
  t.same(final.errors, []);
  const after = JSON.parse((await cli(hashArgs)).stdout);
  t.equal(after.filesCached, 96, 'the cache is complete and valid');
});

t.test("a piece entry's use time is its atime: an old source mtime is not disuse, and clean's own read is no use", async (t) => {
  const dir = t.testdir({ root: { 'old.rpm': randomBytes(30_000), 'idle.rpm': randomBytes(30_000) }, cache: {} });
  const root = join(dir, 'root');
  const cache = join(dir, 'cache');
  // A package last changed long ago: its entry's mtime is that old too.
  const longAgo = new Date(Date.now() - 400 * DAY);
  utimesSync(join(root, 'old.rpm'), longAgo, longAgo);
  t.equal((await cli(['hash', '--root', root, '--cache-dir', cache, '--piece-length', '16K'])).code, 0);
  const entry = (rel: string) => join(cache, 'pieces', rel, String(PL));
  t.ok(Date.now() - statSync(entry('old.rpm')).mtimeMs > 399 * DAY, "the entry has the source's mtime");
  // Not used for 40 days: only the atime says so.
  const idle = statSync(entry('idle.rpm'));
  utimesSync(entry('idle.rpm'), new Date(Date.now() - 40 * DAY), idle.mtime);
  // Used two days ago: a plain read would move that atime (relatime), clean's must not.
  const twoDays = new Date(Date.now() - 2 * DAY);
  utimesSync(entry('old.rpm'), twoDays, longAgo);

  const r = await cli(['cache', 'clean', '--root', root, '--cache-dir', cache, '--json']);
  t.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  t.same(
    j.removed.map((m: { path: string; reason: string }) => [m.path, m.reason]),
    [
      ['pieces/idle.rpm', 'empty-dir'],
      ['pieces/idle.rpm/16384', 'unused'],
    ],
  );
  t.ok(existsSync(entry('old.rpm')), 'an entry of an old file, used recently, stays');
  t.ok(Math.abs(statSync(entry('old.rpm')).atimeMs - twoDays.getTime()) < 1000, 'reading it in clean did not count as a use');
  t.ok(await new PieceCache(cache).get('old.rpm', PL, (await MirrorRoot.open(root)).file('old.rpm')), 'and it is still valid');
});

t.test('--metrics-file: what the run removed, in Prometheus text; a dry run leaves it; a failed run keeps the last success', async (t) => {
  const f = await fixture(t);
  const file = join(f.dir, 'textfile', 'pkgtorrent-cache-clean.prom');
  mkdirSync(join(f.dir, 'textfile'));
  const args = ['cache', 'clean', '--root', f.root, '--cache-dir', f.cache, '--metrics-file', join(f.dir, 'textfile/')];
  const dry = await cli([...args, '--dry-run']);
  t.equal(dry.code, 0, dry.stderr);
  t.notOk(existsSync(file), 'a dry run writes no metrics');
  const r = await cli([...args, '--json']);
  t.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  const m = textfileSamples(file);
  const ended = m.pkgtorrent_cache_clean_last_run_timestamp_seconds!;
  t.same(m, {
    'pkgtorrent_cache_clean_last_run_removed{kind="entries"}': 6,
    'pkgtorrent_cache_clean_last_run_removed{kind="leftovers"}': 2,
    'pkgtorrent_cache_clean_last_run_removed{kind="dirs"}': 5,
    pkgtorrent_cache_clean_last_run_freed_bytes: j.bytes,
    pkgtorrent_cache_clean_last_run_kept_entries: 2,
    pkgtorrent_cache_clean_last_run_errors: 0,
    pkgtorrent_cache_clean_last_run_success: 1,
    pkgtorrent_cache_clean_last_run_duration_seconds: m.pkgtorrent_cache_clean_last_run_duration_seconds,
    pkgtorrent_cache_clean_last_run_timestamp_seconds: ended,
    pkgtorrent_cache_clean_last_success_timestamp_seconds: ended,
  });
  t.ok(j.bytes > 0);
  checkTextfile(t, file);
  const kept = readFileSync(file, 'utf8');
  t.equal((await cli([...args, '--dry-run'])).code, 0);
  t.equal(readFileSync(file, 'utf8'), kept, 'a later dry run leaves the file as it was');

  // Something that cannot be removed: unsuccessful, its errors counted, the last success kept.
  mkdirSync(join(f.cache, 'pieces/ro'));
  writeFileSync(join(f.cache, 'pieces/ro', String(PL)), 'corrupt');
  chmodSync(join(f.cache, 'pieces/ro'), 0o555);
  const bad = await bin(args, { permissionsApply: true });
  chmodSync(join(f.cache, 'pieces/ro'), 0o755);
  t.equal(bad.code, 1, bad.stderr);
  const b = textfileSamples(file);
  t.equal(b.pkgtorrent_cache_clean_last_run_success, 0);
  t.equal(b.pkgtorrent_cache_clean_last_run_errors, 1, 'one error');
  t.equal(b['pkgtorrent_cache_clean_last_run_removed{kind="entries"}'], 0);
  t.equal(b.pkgtorrent_cache_clean_last_success_timestamp_seconds, ended, 'the last success is kept');
  t.ok(b.pkgtorrent_cache_clean_last_run_timestamp_seconds! >= ended);
  checkTextfile(t, file);
});
