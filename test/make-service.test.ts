// `pkgtorrent make --layout service`: the very torrent the service answers,
// built from and into the piece cache.
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli } from './helpers/cli.js';
import { need, ltInfo } from './helpers/oracles.js';
import { decodeTorrent } from './helpers/bencode.js';
import { HashPool } from '../src/core/hasher.js';
import { PieceCache, pieceEntryPath } from '../src/core/piece-cache.js';
import { PieceStore } from '../src/core/piece-store.js';
import { MirrorRoot } from '../src/core/root.js';
import { buildServiceInfo, serviceTorrent } from '../src/core/service-torrent.js';

const PL = 16 * 1024;
const TRACKERS = ['http://t1.example/announce', 'udp://t2.example:6969/announce'];
const PATHS = ['/pub/fedora/a.rpm', '/pub/fedora/b.rpm', '/pub/debian/c.deb'];

function fixture(t: Test) {
  const dir = t.testdir({
    root: { pub: { fedora: { 'a.rpm': randomBytes(PL * 2 + 5), 'b.rpm': randomBytes(PL) }, debian: { 'c.deb': randomBytes(100) } } },
    cache: {},
    expected: {},
    trackers: `# ours\n${TRACKERS.join('\n')}\n`,
  });
  const args = (extra: string[]) => [
    'make',
    '--layout',
    'service',
    '--root',
    join(dir, 'root'),
    '--cache-dir',
    join(dir, 'cache'),
    '--trackers',
    join(dir, 'trackers'),
    '--piece-length',
    '16K',
    '--base-url',
    'http://mirror.example',
    '--json',
    ...extra,
  ];
  return { dir, args };
}

/** What the service would build, computed on a cache of its own. */
async function expected(t: Test, dir: string, paths: string[], trackers = TRACKERS): Promise<Buffer> {
  const pool = new HashPool(2);
  t.teardown(() => pool.close());
  const root = await MirrorRoot.open(join(dir, 'root'));
  const files = paths.map((p) => root.file(p));
  const { info } = await buildServiceInfo(new PieceStore(new PieceCache(join(dir, 'expected')), pool), files, paths.length === 1 ? 'single' : 'multi', PL);
  return serviceTorrent(info, 'http://mirror.example', trackers);
}

t.test('multi-file: the service torrent byte for byte; a second run comes from the cache', async (t) => {
  const { dir, args } = fixture(t);
  const r = await cli(args(['-o', 'out.torrent', ...PATHS]), { cwd: dir });
  t.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  t.match(result, { layout: 'service', name: 'pub', files: 3, filesHashed: 3, filesCached: 0, pieceLength: PL, pieces: 3 + 1 + 1 });
  const bytes = readFileSync(join(dir, 'out.torrent'));
  t.ok(bytes.equals(await expected(t, dir, PATHS)), 'same bytes as buildServiceInfo + serviceTorrent');
  t.same(decodeTorrent(bytes)['announce-list'].flat().sort(), [...TRACKERS].sort(), 'trackers from the trackers file');

  // The cache now holds every file; a second run hashes nothing and leaves
  // the entries as they are.
  const entries = PATHS.map((p) => pieceEntryPath(join(dir, 'cache'), p.slice(1), PL));
  const mtimes = entries.map((e) => statSync(e).mtimeMs);
  const again = await cli(args(['-o', 'again.torrent', ...PATHS]), { cwd: dir });
  t.equal(again.code, 0, again.stderr);
  t.match(JSON.parse(again.stdout), { filesHashed: 0, filesCached: 3, infoHash: result.infoHash });
  t.same(
    entries.map((e) => statSync(e).mtimeMs),
    mtimes,
    'entries not rewritten',
  );
  t.ok(readFileSync(join(dir, 'again.torrent')).equals(bytes));

  // Proof that the hashes are read from the cache, not recomputed: plant an
  // entry with the right stamp and made-up hashes; the torrent carries them.
  const cache = new PieceCache(join(dir, 'cache'));
  const root = await MirrorRoot.open(join(dir, 'root'));
  const b = root.file('/pub/fedora/b.rpm');
  const fake = Buffer.alloc(20, 0xab);
  await cache.put(b.rel, { pieceLength: PL, size: b.size, mtimeNs: b.mtimeNs, full: fake, tail: null });
  const planted = await cli(args(['-o', '-', ...PATHS]), { cwd: dir });
  t.equal(planted.code, 0, planted.stderr);
  t.ok(decodeTorrent(planted.stdoutBytes).info.pieces.subarray(3 * 20, 4 * 20).equals(fake), "b.rpm's piece came from the cache");
});

t.test('libtorrent sees the padding entries as pad files', async (t) => {
  if (!need(t, 'libtorrent')) return;
  const { dir, args } = fixture(t);
  const r = await cli(args(['-o', 'out.torrent', ...PATHS]), { cwd: dir });
  t.equal(r.code, 0, r.stderr);
  const lt = ltInfo(join(dir, 'out.torrent'));
  t.same(
    lt.files.map((f) => [f.path, f.size, f.pad]),
    [
      ['pub/fedora/a.rpm', PL * 2 + 5, false],
      ['pub/torrent_service/nullfile/16379_0', PL - 5, true],
      ['pub/fedora/b.rpm', PL, false],
      ['pub/debian/c.deb', 100, false],
    ],
  );
  t.equal(lt.numPieces, 5);
  t.same(lt.webSeeds, ['http://mirror.example/']);
  t.equal(lt.infoHash, JSON.parse(r.stdout).infoHash);
});

t.test('one path: a single-file torrent whose web seed is the directory', async (t) => {
  if (!need(t, 'libtorrent')) return;
  const { dir, args } = fixture(t);
  const r = await cli(args(['-a', 'http://only.example/announce', '/pub/fedora/a.rpm']), { cwd: dir });
  t.equal(r.code, 0, r.stderr);
  const out = join(dir, 'a.rpm.torrent');
  t.equal(JSON.parse(r.stdout).output, out, 'default output NAME.torrent');
  t.ok(readFileSync(out).equals(await expected(t, dir, ['/pub/fedora/a.rpm'], ['http://only.example/announce'])), '-a replaces the trackers file');
  const lt = ltInfo(out);
  t.same(lt.files, [{ path: 'a.rpm', size: PL * 2 + 5, pad: false }]);
  t.same(lt.webSeeds, ['http://mirror.example/pub/fedora/']);
  t.same(lt.trackers, [{ url: 'http://only.example/announce', tier: 0 }]);
});

t.test('the base URL comes from --base-url, and is required', async (t) => {
  const { dir, args } = fixture(t);
  const noSeed = args(['/pub/fedora/a.rpm']).filter((a) => a !== '--base-url' && a !== 'http://mirror.example');
  const missing = await cli(noSeed, { cwd: dir });
  t.equal(missing.code, 2);
  t.match(missing.stderr, /^pkgtorrent: --layout service needs the base URL of the mirror/);
  const withBase = await cli([...noSeed, '--base-url', 'http://mirror.example', '-o', 'b.torrent'], { cwd: dir });
  t.equal(withBase.code, 0, withBase.stderr);
  t.ok(readFileSync(join(dir, 'b.torrent')).equals(await expected(t, dir, ['/pub/fedora/a.rpm'])));
});

t.test('flags that would change the service torrent are refused', async (t) => {
  const { dir, args } = fixture(t);
  for (const [extra, msg] of [
    [['-n', 'x'], /-n is not available with --layout service/],
    [['-p'], /-p is not available/],
    [['-s', 'x'], /-s is not available/],
    [['-c', 'x'], /-c is not available/],
    [['-l', 'auto'], /-l auto is not available/],
    // -w is the whole web seed elsewhere: here it would be silently wrong (http://h/pub/pub/).
    [['-w', 'http://mirror.example/pub/'], /^pkgtorrent: -w is not taken with --layout service: give the mirror with --base-url URL/],
  ] as const) {
    const r = await cli(args([...extra, '/pub/fedora/a.rpm']), { cwd: dir });
    t.equal(r.code, 2, extra.join(' '));
    t.match(r.stderr, msg);
  }
  const outside = await cli(args(['/pub/../../etc/passwd']), { cwd: dir });
  t.equal(outside.code, 1);
  t.match(outside.stderr, /not allowed in paths/);
  writeFileSync(join(dir, 'root/top.iso'), 'x');
  const top = await cli(args(['/top.iso', '/pub/fedora/a.rpm']), { cwd: dir });
  t.equal(top.code, 1);
  t.match(top.stderr, /top\.iso: a file at the top of the root cannot be in a multi-file torrent/);
});
