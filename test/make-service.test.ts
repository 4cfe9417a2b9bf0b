// `pkgtorrent make --layout service`: the very torrent the service answers,
// built from and into the piece cache.
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli } from './helpers/cli.js';
import { need, ltInfo } from './helpers/oracles.js';
import { decodeTorrent } from './helpers/bencode.js';
import { digestOf, postPaths, request, startServe } from './helpers/server.js';
import { PieceCache, pieceEntryPath } from '../src/core/piece-cache.js';
import { MirrorRoot } from '../src/core/root.js';

const PL = 16 * 1024;
const TRACKERS = ['http://t1.example/announce', 'udp://t2.example:6969/announce'];
const PATHS = ['/pub/fedora/a.rpm', '/pub/fedora/b.rpm', '/pub/debian/c.deb'];

function fixture(t: Test) {
  const dir = t.testdir({
    root: { pub: { fedora: { 'a.rpm': randomBytes(PL * 2 + 5), 'b.rpm': randomBytes(PL) }, debian: { 'c.deb': randomBytes(100) } } },
    cache: {},
    served: {},
    trackers: `# ours\n${TRACKERS.join('\n')}\n`,
    'only-trackers': 'http://only.example/announce\n',
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

/**
 * A running serve on the same root, piece length and base URL, with its own
 * cache (so both sides hash for themselves): what make must equal is what
 * this answers over HTTP.
 */
async function served(t: Test, dir: string, trackers = 'trackers', extra: string[] = []) {
  const srv = await startServe(t, {
    root: join(dir, 'root'),
    cacheDir: join(dir, 'served'),
    trackers: join(dir, trackers),
    pieceLength: '16K',
    args: ['--base-url', 'http://mirror.example', ...extra],
    inProcess: true,
  });
  const ok = (r: { status: number; body: Buffer }) => {
    t.equal(r.status, 200, r.body.toString());
    return r.body;
  };
  return {
    /** The yum-torrent conversation: POST the paths to their digest URL. */
    digest: async (paths: string[]) => ok(await postPaths(srv.url, 'pub', paths, digestOf(paths))),
    /** GET simple/<path>. */
    simple: async (path: string) => ok(await request(srv.url, `/pub/torrent_service/simple${path}`)),
  };
}

t.test('multi-file: the service torrent byte for byte; a second run comes from the cache', async (t) => {
  const { dir, args } = fixture(t);
  const r = await cli(args(['-o', 'out.torrent', ...PATHS]), { cwd: dir });
  t.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout);
  t.match(result, { layout: 'service', name: 'pub', files: 3, filesHashed: 3, filesCached: 0, pieceLength: PL, pieces: 3 + 1 + 1 });
  const bytes = readFileSync(join(dir, 'out.torrent'));
  const answer = await (await served(t, dir)).digest(PATHS);
  t.ok(bytes.equals(answer), "same bytes as serve's answer to the digest request");
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
  cache.write(b.rel, { pieceLength: PL, size: b.size, mtimeNs: b.mtimeNs, full: fake, tail: null });
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

t.test("one path: serve's simple/ answer, a single-file torrent whose web seed is the directory", async (t) => {
  const { dir, args } = fixture(t);
  const r = await cli(args(['-a', 'http://only.example/announce', '/pub/fedora/a.rpm']), { cwd: dir });
  t.equal(r.code, 0, r.stderr);
  const out = join(dir, 'a.rpm.torrent');
  t.equal(JSON.parse(r.stdout).output, out, 'default output NAME.torrent');
  const answer = await (await served(t, dir, 'only-trackers')).simple('/pub/fedora/a.rpm');
  t.ok(readFileSync(out).equals(answer), "-a replaces the trackers file; the bytes are serve's with those trackers");
  if (!need(t, 'libtorrent')) return;
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
  t.ok(readFileSync(join(dir, 'b.torrent')).equals(await (await served(t, dir)).simple('/pub/fedora/a.rpm')));
});

t.test('one path asked for by digest: serve answers multi-file, make (as simple/) single-file', async (t) => {
  // yum-torrent always uses the digest route, where even one package is a
  // multi-file torrent under its first directory; make gives what simple/
  // answers. The pages say so; this holds them to it.
  const { dir, args } = fixture(t);
  const r = await cli(args(['-o', 'one.torrent', '/pub/fedora/a.rpm']), { cwd: dir });
  t.equal(r.code, 0, r.stderr);
  const made = decodeTorrent(readFileSync(join(dir, 'one.torrent')));
  const byDigest = decodeTorrent(await (await served(t, dir)).digest(['/pub/fedora/a.rpm']));
  t.equal(made.info.length, PL * 2 + 5, 'make: single-file');
  t.equal(made.info.files, undefined);
  t.equal(byDigest.info.name.toString(), 'pub', 'digest: named after the first directory');
  t.same(
    byDigest.info.files.map((f: { path: Buffer[] }) => f.path.map(String).join('/')),
    ['fedora/a.rpm'],
    'digest: a multi-file torrent of the one file',
  );
});

t.test('private, source and further web seeds: -p, -s and the settings give what serve answers with them', async (t) => {
  const { dir, args } = fixture(t);
  const seeds = 'http://second.example/mirror,https://cdn.example/';
  const vars = { PKGTORRENT_WEB_SEEDS: seeds };
  const r = await cli(args(['-p', '-s', 'fleet-a', '-o', 'out.torrent', ...PATHS]), { cwd: dir, vars });
  t.equal(r.code, 0, r.stderr);
  const srv = await served(t, dir, 'trackers', ['--private', '--source', 'fleet-a', '--web-seeds', 'http://second.example/mirror/', '--web-seeds', 'https://cdn.example']);
  const answer = await srv.digest(PATHS);
  const made = readFileSync(join(dir, 'out.torrent'));
  t.ok(made.equals(answer), "same bytes as serve's answer with --private --source --web-seeds");
  const d = decodeTorrent(made);
  t.equal(d.info.private, 1);
  t.equal(String(d.info.source), 'fleet-a');
  t.same(d['url-list'].map(String), ['http://mirror.example/', 'http://second.example/mirror/', 'https://cdn.example/'], "the mirror's own first, then the others in order");
  t.match(JSON.parse(r.stdout).magnet, /&ws=http%3A%2F%2Fmirror\.example%2F&ws=http%3A%2F%2Fsecond\.example%2Fmirror%2F&ws=https%3A%2F%2Fcdn\.example%2F$/);
  // From the environment as serve would take it from its config file; the same torrent.
  const fromEnv = await cli(args(['-o', 'env.torrent', ...PATHS]), { cwd: dir, vars: { ...vars, PKGTORRENT_PRIVATE: 'yes', PKGTORRENT_SOURCE: 'fleet-a' } });
  t.equal(fromEnv.code, 0, fromEnv.stderr);
  t.ok(readFileSync(join(dir, 'env.torrent')).equals(made), 'the private and source settings from the environment');
  const plain = await cli(args(['-o', 'plain.torrent', ...PATHS]), { cwd: dir });
  t.not(JSON.parse(plain.stdout).infoHash, JSON.parse(r.stdout).infoHash, 'another info hash without them');
  t.match(JSON.parse(plain.stdout), { filesHashed: 0 }, 'from the same piece cache');
  const bad = await cli(args(['/pub/fedora/a.rpm']), { cwd: dir, vars: { PKGTORRENT_WEB_SEEDS: 'http://ok.example,ftp://no.example' } });
  t.equal(bad.code, 2);
  t.match(bad.stderr, /PKGTORRENT_WEB_SEEDS: invalid web seed 'ftp:\/\/no\.example': unsupported scheme 'ftp' \(use http or https\)/);
});

t.test('flags that would change the service torrent are refused', async (t) => {
  const { dir, args } = fixture(t);
  for (const [extra, msg] of [
    [['-n', 'x'], /-n is not available with --layout service/],
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
