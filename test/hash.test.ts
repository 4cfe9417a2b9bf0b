// `pkgtorrent hash`: incremental, pattern-driven, and honest about failures.
import t, { type Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, utimesSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, bin } from './helpers/cli.js';
import { pieceHashes } from './helpers/bencode.js';
import { summaryLine } from '../src/commands/hash.js';
import { FORMAT_VERSION, PieceCache, isCurrentEntry } from '../src/core/piece-cache.js';
import { need } from './helpers/oracles.js';
import { watchOpens } from './helpers/watch-opens.js';
import { versionOne } from './helpers/piece-entries.js';
import { MirrorRoot } from '../src/core/root.js';
import { checkTextfile, textfileSamples } from './helpers/textfile.js';

function tree(t: Test) {
  return t.testdir({
    root: {
      fedora: { 'a.rpm': randomBytes(70_000), 'b.rpm': randomBytes(20_000), debug: { 'a-debuginfo.rpm': randomBytes(5000) } },
      debian: { pool: { 'c.deb': randomBytes(100) } },
      '.treeinfo': 'x',
      'empty.iso': '',
    },
    cache: {},
  });
}

t.test('fills the cache, then a second run hashes nothing', async (t) => {
  const dir = tree(t);
  const args = ['hash', '--root', join(dir, 'root'), '--cache-dir', join(dir, 'cache'), '--piece-length', '16K', '--json'];
  const first = await cli(args);
  t.equal(first.code, 0, first.stderr);
  const s1 = JSON.parse(first.stdout);
  t.equal(s1.filesHashed, 5, 'every file, empty ones included, hidden ones not');
  t.equal(s1.filesCached, 0);
  t.equal(s1.bytesHashed, 70_000 + 20_000 + 5000 + 100);
  t.same(s1.errors, []);
  const second = JSON.parse((await cli(args)).stdout);
  t.equal(second.filesHashed, 0, 'nothing hashed twice');
  t.equal(second.filesCached, 5);

  // The entries are the ones every other command reads.
  const root = await MirrorRoot.open(join(dir, 'root'));
  const file = root.file('fedora/a.rpm');
  t.ok(await new PieceCache(join(dir, 'cache')).get(file.rel, 16384, file), 'entry readable by the piece cache');

  // A touched file is hashed again, alone.
  const p = join(dir, 'root/fedora/b.rpm');
  const st = statSync(p);
  utimesSync(p, st.atime, new Date(st.mtimeMs + 10_000));
  const third = JSON.parse((await cli(args)).stdout);
  t.equal(third.filesHashed, 1);
  t.equal(third.filesCached, 4);
});

t.test('patterns and excludes select files relative to the root', async (t) => {
  const dir = tree(t);
  const base = ['hash', '--root', join(dir, 'root'), '--cache-dir', join(dir, 'cache'), '--json'];
  const r = await cli([...base, 'fedora/**/*.rpm', '--exclude', '**/debug/**']);
  t.equal(r.code, 0, r.stderr);
  t.equal(JSON.parse(r.stdout).filesHashed, 2);
  t.same(readdirSync(join(dir, 'cache/pieces/fedora')).sort(), ['a.rpm', 'b.rpm']);
  const none = await cli([...base, 'nothing/*.rpm']);
  t.equal(none.code, 1);
  t.match(none.stderr, /^pkgtorrent: no files match nothing\/\*\.rpm/);
  t.equal(none.stderr.trim().split('\n').length, 1, 'one line');
});

t.test('the summary line, and silence with --quiet', async (t) => {
  const dir = tree(t);
  const base = ['hash', '--root', join(dir, 'root'), '--cache-dir', join(dir, 'cache')];
  const r = await cli(base);
  t.match(r.stdout, /^hashed 5 files, 0 already cached, .* in [\d.]+s \(.*\/s\), 0 errors\n$/);
  t.equal(r.stderr, '', 'no progress bar when stderr is not a terminal');
  const q = await cli([...base, '--quiet']);
  t.equal(q.stdout + q.stderr, '');
});

t.test('the cache dir inside the root is never hashed', async (t) => {
  const dir = tree(t);
  const root = join(dir, 'root');
  await cli(['hash', '--root', root, '--cache-dir', join(root, '.cache')]);
  const again = JSON.parse((await cli(['hash', '--root', root, '--cache-dir', join(root, '.cache'), '--json'])).stdout);
  t.equal(again.filesHashed, 0);
  t.equal(again.filesCached, 5);
});

t.test('a symlink leading outside the root is skipped, said, and fails the run', async (t) => {
  const dir = t.testdir({ root: { pub: { 'ok.rpm': 'ok' } }, outside: { secret: 'secret' }, cache: {} });
  symlinkSync(join(dir, 'outside/secret'), join(dir, 'root/pub/leak.rpm'));
  const r = await cli(['hash', '--root', join(dir, 'root'), '--cache-dir', join(dir, 'cache'), '--json']);
  t.equal(r.code, 1, 'a skipped file is not a success');
  t.equal(JSON.parse(r.stdout).filesHashed, 1);
  t.match(r.stderr, /skipping pub\/leak\.rpm: resolves outside the root \(--allow-outside DIR/);
  t.notOk(existsSync(join(dir, 'cache/pieces/pub/leak.rpm')));
  const allowed = await cli(['hash', '--root', join(dir, 'root'), '--cache-dir', join(dir, 'cache'), '--allow-outside', join(dir, 'outside'), '--json']);
  t.equal(allowed.code, 0, allowed.stderr);
  t.equal(JSON.parse(allowed.stdout).filesHashed, 1, 'with --allow-outside the link is followed and hashed');
  t.ok(existsSync(join(dir, 'cache/pieces/pub/leak.rpm')));
});

t.test('an unreadable file is reported, not cached, and the run goes on to exit 1', async (t) => {
  const dir = tree(t);
  const bad = join(dir, 'root/fedora/b.rpm');
  chmodSync(bad, 0o000);
  const r = await bin(['hash', '--root', join(dir, 'root'), '--cache-dir', join(dir, 'cache'), '--json'], { permissionsApply: true });
  t.equal(r.code, 1, 'exit 1 at the end');
  const s = JSON.parse(r.stdout);
  t.equal(s.filesHashed, 4, 'the others were hashed');
  t.same(s.errors.map((e: { path: string }) => e.path), ['fedora/b.rpm']);
  t.match(r.stderr, /^pkgtorrent: fedora\/b\.rpm: .*permission denied/im);
  t.notOk(existsSync(join(dir, 'cache/pieces/fedora/b.rpm/1048576')), 'not cached');
});

t.test('bad usage exits 2 with one line', async (t) => {
  const dir = tree(t);
  for (const [args, msg] of [
    [['hash', '--root', join(dir, 'nope')], /root .*nope: no such file or directory/],
    [['hash', '--root', join(dir, 'root'), '--piece-length', '100K'], /must be a power of two/],
    [['hash', '--root', join(dir, 'root'), '--piece-length', '8K'], /at least 16K/],
    [['hash', '--root', join(dir, 'root'), '-j', 'zero'], /jobs/],
    [['hash', '--frobnicate'], /unknown option/],
    [['hash', '--root', join(dir, 'root'), '--quiet', '--json'], /option '-q, --quiet' cannot be used with option '--json'/],
  ] as const) {
    const r = await bin([...args, '--cache-dir', join(dir, 'cache')]);
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    t.match(r.stderr, msg);
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    t.match(r.stderr, /^pkgtorrent: /);
  }
});

t.test('big files are split across workers, and the hashes are the ones plain SHA-1 gives, at -j 1 and -j 2', async (t) => {
  const dir = t.testdir({ root: { isos: {} }, c1: {}, c2: {} });
  const PIECE = 1 << 20;
  const content = randomBytes(150 * PIECE + 5);
  writeFileSync(join(dir, 'root/isos/big.iso'), content);
  // The oracle: node:crypto over the bytes, piece by piece, none of the hasher's code.
  const want = pieceHashes(content, PIECE);
  const wantPadded = createHash('sha1').update(content.subarray(150 * PIECE)).update(Buffer.alloc(PIECE - 5)).digest();
  const root = await MirrorRoot.open(join(dir, 'root'));
  const f = root.file('isos/big.iso');
  for (const [jobs, cache] of [['1', 'c1'], ['2', 'c2']] as const) {
    const r = await cli(['hash', '--root', join(dir, 'root'), '--cache-dir', join(dir, cache), '-j', jobs]);
    t.equal(r.code, 0, r.stderr);
    const got = await new PieceCache(join(dir, cache)).get(f.rel, PIECE, f);
    t.ok(got, `-j ${jobs}: an entry`);
    t.equal(got!.full.length, 150 * 20);
    t.ok(Buffer.from(got!.full).equals(want.subarray(0, 150 * 20)), `-j ${jobs}: every full piece`);
    t.ok(Buffer.from(got!.tail!.plain).equals(want.subarray(150 * 20)), `-j ${jobs}: the short last piece`);
    t.ok(Buffer.from(got!.tail!.padded).equals(wantPadded), `-j ${jobs}: the last piece padded with zeros (BEP 47)`);
  }
});

t.test('a progress bar on a terminal, with bytes, rate and ETA', async (t) => {
  const dir = tree(t);
  const r = await cli(['hash', '--root', join(dir, 'root'), '--cache-dir', join(dir, 'cache')], { tty: true });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /hashing .* 100% \| [\d.]+ KiB\/[\d.]+ KiB \| .*\/s \| ETA/);
  t.match(r.stdout, /^hashed 5 files/, 'the summary still goes to stdout');
});

t.test('paths with a leading slash, as serve and make write them, are under the root', async (t) => {
  const dir = tree(t);
  const base = ['hash', '--root', join(dir, 'root'), '--cache-dir', join(dir, 'cache'), '--json'];
  const rel = '/fedora/a.rpm';
  const r = await cli([...base, rel]);
  t.equal(r.code, 0, r.stderr);
  t.equal(JSON.parse(r.stdout).filesHashed, 1, `${rel} hashed`);
  const again = await cli([...base, rel, '--exclude', rel]);
  t.equal(again.code, 1, 'an exclude with a leading slash applies too');
  t.match(again.stderr, /no files match/);
});

t.test('rates are whole bytes below 1 KiB/s', async (t) => {
  t.equal(summaryLine({ filesHashed: 1, filesCached: 0, bytesHashed: 6, seconds: 0.011, bytesPerSecond: 545.4545454545455, errors: [] }), 'hashed 1 file, 0 already cached, 6 B in 0.0s (545 B/s), 0 errors');
});

t.test('a second run decides by stat alone: it opens no entry and no source file', async (t) => {
  if (!need(t, 'inotifywait')) return;
  const dir = tree(t);
  const args = ['hash', '--root', join(dir, 'root'), '--cache-dir', join(dir, 'cache'), '--piece-length', '16K', '--json'];
  t.equal((await cli(args)).code, 0);
  const events = await watchOpens(t, dir);
  const second = JSON.parse((await cli(args)).stdout);
  t.equal(second.filesCached, 5);
  // Directories are listed (opened); no regular file is.
  const opened = events()
    .trim()
    .split('\n')
    .filter((l) => l && !/\bISDIR\b/.test(l));
  t.same(opened, [], 'no file opened');
});

t.test('an entry current by stat is trusted by hash, but a reader still validates it', async (t) => {
  const dir = tree(t);
  const args = ['hash', '--root', join(dir, 'root'), '--cache-dir', join(dir, 'cache'), '--piece-length', '16K', '--json'];
  t.equal((await cli(args)).code, 0);
  const entry = join(dir, 'cache/pieces/fedora/a.rpm/16384');
  const st = statSync(entry, { bigint: true });
  // Same size and times, one flipped bit: only reading can tell.
  const bytes = readFileSync(entry);
  bytes[40] = bytes[40]! ^ 1;
  writeFileSync(entry, bytes);
  utimesSync(entry, Number(st.atimeNs) / 1e9, Number(st.mtimeNs) / 1e9);
  t.equal(JSON.parse((await cli(args)).stdout).filesHashed, 0, 'hash: nothing to do');
  const root = await MirrorRoot.open(join(dir, 'root'));
  const file = root.file('fedora/a.rpm');
  t.equal(await new PieceCache(join(dir, 'cache')).get(file.rel, 16384, file), null, 'the reader refuses it');
});

t.test('a version 1 entry is not hashed again: hash rewrites it as version 2', async (t) => {
  const dir = tree(t);
  const args = ['hash', '--root', join(dir, 'root'), '--cache-dir', join(dir, 'cache'), '--piece-length', '16K', '--json'];
  t.equal((await cli(args)).code, 0);
  const entry = join(dir, 'cache/pieces/fedora/a.rpm/16384');
  // As version 1 wrote it: version 1, the entry's mtime its use time.
  writeFileSync(entry, versionOne(readFileSync(entry)));
  const s = JSON.parse((await cli(args)).stdout);
  t.equal(s.filesHashed, 0, 'nothing hashed');
  t.equal(s.filesCached, 5);
  t.equal(readFileSync(entry).readUInt16BE(8), FORMAT_VERSION, 'rewritten in the current version');
  const src = statSync(join(dir, 'root/fedora/a.rpm'));
  t.ok(isCurrentEntry(statSync(entry), src, 16384), 'and current by stat from now on');
});

t.test('links to directories are walked, each real directory once per path down, so a loop ends', async (t) => {
  const dir = t.testdir({ root: { pub: { 'a.rpm': 'a' } }, cache: {} });
  symlinkSync(join(dir, 'root/pub'), join(dir, 'root/alias'));
  symlinkSync(join(dir, 'root/pub'), join(dir, 'root/pub/loop'));
  const r = await cli(['hash', '--root', join(dir, 'root'), '--cache-dir', join(dir, 'cache'), '--json']);
  t.equal(r.code, 0, r.stderr);
  t.equal(JSON.parse(r.stdout).filesHashed, 3, 'pub/a.rpm, pub/loop/a.rpm, alias/a.rpm');
  t.ok(existsSync(join(dir, 'cache/pieces/alias/a.rpm')), 'a file under a linked directory is hashed by its path');
  t.notOk(existsSync(join(dir, 'cache/pieces/pub/loop/loop')), 'the loop is not followed twice');
});

t.test('--metrics-file: the run in Prometheus text, atomically; a failed run keeps the last success time', async (t) => {
  const dir = tree(t);
  const file = join(dir, 'hash.prom');
  const args = ['hash', '--root', join(dir, 'root'), '--cache-dir', join(dir, 'cache'), '--piece-length', '16K', '--quiet', '--metrics-file', file];
  const before = Date.now() / 1000;
  const ok = await cli(args);
  const after = Date.now() / 1000;
  t.equal(ok.code, 0, ok.stderr);
  t.equal(ok.stdout, '', 'quiet');
  const m = textfileSamples(file);
  t.same(
    Object.keys(m),
    [
      'pkgtorrent_hash_last_run_files{result="hashed"}',
      'pkgtorrent_hash_last_run_files{result="cached"}',
      'pkgtorrent_hash_last_run_hashed_bytes',
      'pkgtorrent_hash_last_run_errors',
      'pkgtorrent_hash_last_run_success',
      'pkgtorrent_hash_last_run_duration_seconds',
      'pkgtorrent_hash_last_run_timestamp_seconds',
      'pkgtorrent_hash_last_success_timestamp_seconds',
    ],
    'the samples, and no others',
  );
  t.equal(m['pkgtorrent_hash_last_run_files{result="hashed"}'], 5);
  t.equal(m['pkgtorrent_hash_last_run_files{result="cached"}'], 0);
  t.equal(m.pkgtorrent_hash_last_run_hashed_bytes, 70_000 + 20_000 + 5000 + 100);
  t.equal(m.pkgtorrent_hash_last_run_errors, 0);
  t.equal(m.pkgtorrent_hash_last_run_success, 1);
  const ended = m.pkgtorrent_hash_last_run_timestamp_seconds!;
  t.ok(ended >= before - 0.001 && ended <= after + 0.001, 'ended during the run');
  t.equal(m.pkgtorrent_hash_last_success_timestamp_seconds, ended, 'a success: last success is this run');
  t.ok(m.pkgtorrent_hash_last_run_duration_seconds! >= 0 && m.pkgtorrent_hash_last_run_duration_seconds! <= after - before + 0.001, 'its duration');
  t.equal(statSync(file).mode & 0o777, 0o644, 'readable by node_exporter');
  checkTextfile(t, file);

  // A file that fails (a link out of the root): the run is unsuccessful, its last success stays.
  symlinkSync('/etc/hostname', join(dir, 'root/debian/out.rpm'));
  const bad = await cli(args);
  t.equal(bad.code, 1, bad.stderr);
  const f = textfileSamples(file);
  t.equal(f.pkgtorrent_hash_last_run_success, 0, 'unsuccessful');
  t.equal(f.pkgtorrent_hash_last_run_errors, 1, 'one error');
  t.equal(f['pkgtorrent_hash_last_run_files{result="cached"}'], 5, 'the others were cached already');
  t.equal(f.pkgtorrent_hash_last_success_timestamp_seconds, m.pkgtorrent_hash_last_success_timestamp_seconds, 'the last success is kept');
  t.ok(f.pkgtorrent_hash_last_run_timestamp_seconds! >= ended, 'this run ended later');
  checkTextfile(t, file);

  // A run that fails outright (no root): what it did is unknown, the last success still stays.
  const none = await cli(['hash', '--root', join(dir, 'nothing'), '--cache-dir', join(dir, 'cache'), '--metrics-file', file]);
  t.equal(none.code, 2, 'a missing root: exit 2');
  t.match(none.stderr, /nothing/);
  t.same(
    textfileSamples(file),
    {
      pkgtorrent_hash_last_run_success: 0,
      pkgtorrent_hash_last_run_duration_seconds: textfileSamples(file).pkgtorrent_hash_last_run_duration_seconds,
      pkgtorrent_hash_last_run_timestamp_seconds: textfileSamples(file).pkgtorrent_hash_last_run_timestamp_seconds,
      pkgtorrent_hash_last_success_timestamp_seconds: m.pkgtorrent_hash_last_success_timestamp_seconds,
    },
    'success 0, the times, and the last success of the old file',
  );
  checkTextfile(t, file);

  // A failed first run has no success to tell.
  const fresh = join(dir, 'fresh.prom');
  t.equal((await cli(['hash', '--root', join(dir, 'nothing'), '--cache-dir', join(dir, 'cache'), '--metrics-file', fresh])).code, 2);
  t.same(Object.keys(textfileSamples(fresh)), ['pkgtorrent_hash_last_run_success', 'pkgtorrent_hash_last_run_duration_seconds', 'pkgtorrent_hash_last_run_timestamp_seconds'], 'no last success');
});

t.test('--metrics-file: a directory gets pkgtorrent-hash.prom; the variable works; a file that cannot be written fails the run after its summary', async (t) => {
  const dir = tree(t);
  mkdirSync(join(dir, 'textfile'));
  const base = ['hash', '--root', join(dir, 'root'), '--cache-dir', join(dir, 'cache')];
  t.equal((await cli(base, { vars: { PKGTORRENT_METRICS_FILE: join(dir, 'textfile') } })).code, 0);
  t.same(readdirSync(join(dir, 'textfile')), ['pkgtorrent-hash.prom'], 'named after the command, in the directory');
  t.equal(textfileSamples(join(dir, 'textfile/pkgtorrent-hash.prom'))['pkgtorrent_hash_last_run_files{result="hashed"}'], 5);
  const relative = await cli([...base, '--metrics-file', 'textfile/'], { cwd: dir });
  t.equal(relative.code, 0, 'relative to the cwd, a trailing slash names a directory');
  t.equal(textfileSamples(join(dir, 'textfile/pkgtorrent-hash.prom'))['pkgtorrent_hash_last_run_files{result="cached"}'], 5);

  const r = await cli([...base, '--metrics-file', join(dir, 'missing/dir/')]);
  t.equal(r.code, 1, 'exit 1');
  t.match(r.stdout, /^hashed 0 files, 5 already cached/, 'the summary still printed');
  t.match(r.stderr, /^pkgtorrent: cannot write metrics file .*missing\/dir\/pkgtorrent-hash\.prom: no such file or directory$/m);
  t.notOk(existsSync(join(dir, 'missing')), 'no directory created');
});
