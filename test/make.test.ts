// `pkgtorrent make` in the default (mktorrent) layout: the info hash must be
// mktorrent's own for the same input, and libtorrent must read every torrent.
import t, { type Test } from 'tap';
import bencode from 'bencode';
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli } from './helpers/cli.js';
import { need, ltInfo, mktorrentHash } from './helpers/oracles.js';
import { decodeTorrent, pieceHashes } from './helpers/bencode.js';
import { autoPieceLength, parseTorrentPieceLength } from '../src/core/piece-length.js';

const K = 1024;

/**
 * A tree with what trips up a file walker: nested and hidden directories,
 * hidden and empty files, files of exactly 64K (a multiple of every piece
 * length up to 64K), tiny files, names that sort differently by byte and by
 * segment ("a.txt" vs "a/b"), upper case, non-ASCII, symlinks to a file and to
 * a directory, and a FIFO (not content).
 */
function tree(t: Test): { dir: string; content: string } {
  const dir = t.testdir({
    content: {
      'a.txt': randomBytes(5),
      a: { b: randomBytes(40 * K + 3), '.hidden-dir': { x: randomBytes(1) } },
      '.hidden': randomBytes(700),
      B: randomBytes(64 * K),
      empty: '',
      sub: { deeper: { 'exact.bin': randomBytes(64 * K), 'empty-too': '' }, 'z.bin': randomBytes(300 * K + 17) },
      'é.txt': randomBytes(9),
    },
    'link-target': randomBytes(33),
  });
  const content = join(dir, 'content');
  symlinkSync('../link-target', join(content, 'link'));
  symlinkSync('sub/deeper', join(content, 'dirlink'));
  execFileSync('mkfifo', [join(content, 'fifo')]);
  return { dir, content };
}

async function make(t: Test, args: string[], cwd: string): Promise<{ infoHash: string; output: string; pieces: number; files: number; size: number; pieceLength: number }> {
  const r = await cli(['make', '--json', ...args], { cwd });
  t.equal(r.code, 0, `make ${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

t.test('info hash equals mktorrent on a directory, at several piece lengths', async (t) => {
  if (!need(t, 'mktorrent') || !need(t, 'libtorrent')) return;
  const { dir, content } = tree(t);
  for (const exp of [15, 18, 20]) {
    const ours = await make(t, ['-l', String(exp), '-o', join(dir, `ours-${exp}.torrent`), 'content'], dir);
    const theirs = mktorrentHash(content, exp, join(dir, `mk-${exp}.torrent`));
    t.equal(ours.infoHash, theirs, `-l ${exp}`);
    const lt = ltInfo(ours.output);
    t.equal(lt.infoHash, theirs, 'libtorrent agrees');
    t.equal(lt.pieceLength, 2 ** exp);
    t.equal(lt.numPieces, Math.ceil(lt.totalSize / 2 ** exp));
    t.equal(ours.pieces, lt.numPieces);
    t.equal(lt.totalSize, 5 + 40 * K + 3 + 1 + 700 + 64 * K + 64 * K + 300 * K + 17 + 9 + 33 + 64 * K);
    t.same(
      lt.files.map((f) => [f.path, f.size, f.pad]),
      [
        ['content/.hidden', 700, false],
        ['content/B', 64 * K, false],
        ['content/a.txt', 5, false],
        ['content/a/.hidden-dir/x', 1, false],
        ['content/a/b', 40 * K + 3, false],
        ['content/dirlink/empty-too', 0, false],
        ['content/dirlink/exact.bin', 64 * K, false],
        ['content/empty', 0, false],
        ['content/link', 33, false],
        ['content/sub/deeper/empty-too', 0, false],
        ['content/sub/deeper/exact.bin', 64 * K, false],
        ['content/sub/z.bin', 300 * K + 17, false],
        ['content/é.txt', 9, false],
      ],
      'byte order of the whole path, hidden and empty files, symlinks followed, no FIFO',
    );
  }
});

t.test('16K pieces (below mktorrent 1.1 range): against an independent computation', async (t) => {
  const dir = t.testdir({ d: { 'b.bin': randomBytes(16 * K), 'a.bin': randomBytes(20 * K + 1), c: { e: '' }, 'c.d': randomBytes(3) } });
  const ours = await make(t, ['-l', '16K', '--no-date', '-o', 'x.torrent', 'd'], dir);
  // Expected: files in byte order, one stream, pieces across boundaries.
  const order = ['a.bin', 'b.bin', 'c.d', 'c/e'];
  const data = order.map((p) => readFileSync(join(dir, 'd', p)));
  const stream = Buffer.concat(data);
  const info = {
    files: order.map((p, i) => ({ length: data[i]!.length, path: p.split('/') })),
    name: 'd',
    'piece length': 16 * K,
    pieces: pieceHashes(stream, 16 * K),
  };
  t.equal(ours.infoHash, createHash('sha1').update(bencode.encode(info)).digest('hex'));
  t.equal(ours.pieces, 3);
});

t.test('single files: info hash equals mktorrent, exact multiples and tiny files', async (t) => {
  if (!need(t, 'mktorrent') || !need(t, 'libtorrent')) return;
  const dir = t.testdir({ 'exact.bin': randomBytes(1024 * K), 'tiny.bin': randomBytes(3), 'odd.bin': randomBytes(300 * K + 1) });
  for (const name of ['exact.bin', 'tiny.bin', 'odd.bin']) {
    for (const exp of [15, 18, 20]) {
      const ours = await make(t, ['-l', String(exp), '-o', `${name}-${exp}.torrent`, name], dir);
      t.equal(ours.infoHash, mktorrentHash(join(dir, name), exp, join(dir, `mk-${name}-${exp}.torrent`)), `${name} -l ${exp}`);
      const lt = ltInfo(ours.output);
      t.same(lt.files, [{ path: name, size: readFileSync(join(dir, name)).length, pad: false }]);
      t.equal(lt.numPieces, ours.pieces);
    }
  }
});

t.test('-p, -s and -n go into info exactly as mktorrent puts them', async (t) => {
  if (!need(t, 'mktorrent')) return;
  const { dir, content } = tree(t);
  for (const extra of [['-p'], ['-s', 'my-tracker'], ['-p', '-s', 'X', '-n', 'renamed']]) {
    const ours = await make(t, ['-l', '16', ...extra, '-o', `o${extra.join('')}.torrent`, 'content'], dir);
    t.equal(ours.infoHash, mktorrentHash(content, 16, join(dir, `mk${extra.join('')}.torrent`), extra), extra.join(' '));
  }
});

t.test('trackers, web seeds, comment and date: the whole torrent as mktorrent writes it', async (t) => {
  if (!need(t, 'mktorrent')) return;
  const dir = t.testdir({ f: randomBytes(1000) });
  const flags = ['-a', 'http://t1/a,http://t2/a', '-a', 'udp://t3:6969/a', '-w', 'http://w1/f,http://w2/f', '-w', 'https://w3/f', '-c', 'a comment', '-l', '15'];
  const r = await cli(['make', ...flags, '--no-date', '-o', 'ours.torrent', 'f'], { cwd: dir });
  t.equal(r.code, 0, r.stderr);
  execFileSync('mktorrent', [...flags, '-d', '-o', join(dir, 'mk.torrent'), join(dir, 'f')], { stdio: 'ignore' });
  const ours = decodeTorrent(readFileSync(join(dir, 'ours.torrent')));
  const theirs = decodeTorrent(readFileSync(join(dir, 'mk.torrent')));
  t.match(ours['created by'], /^pkgtorrent\//);
  delete ours['created by'];
  delete theirs['created by'];
  t.same(ours, theirs);
  t.same(ours['announce-list'], [['http://t1/a', 'http://t2/a'], ['udp://t3:6969/a']], 'commas within a tier, -a per tier');

  // A lone tracker: `announce` only, as mktorrent. A date unless --no-date.
  const one = await cli(['make', '-a', 'http://t/a', '-o', 'one.torrent', 'f'], { cwd: dir });
  t.equal(one.code, 0, one.stderr);
  const d = decodeTorrent(readFileSync(join(dir, 'one.torrent')));
  t.equal(d.announce, 'http://t/a');
  t.notOk('announce-list' in d);
  t.ok(Math.abs(d['creation date'] - Date.now() / 1000) < 60, 'creation date is now');
});

t.test('prints the info hash and a magnet link; -o - keeps stdout for the torrent', async (t) => {
  if (!need(t, 'libtorrent')) return;
  const dir = t.testdir({ 'pkg.rpm': randomBytes(50 * K) });
  const r = await cli(['make', '-a', 'http://t/ann', 'pkg.rpm'], { cwd: dir });
  t.equal(r.code, 0, r.stderr);
  t.same(readdirSync(dir).sort(), ['pkg.rpm', 'pkg.rpm.torrent'], 'default output NAME.torrent in the cwd, nothing else');
  const lt = ltInfo(join(dir, 'pkg.rpm.torrent'));
  t.match(r.stdout, new RegExp(`^info hash: ${lt.infoHash}$`, 'm'));
  t.match(r.stdout, new RegExp(`^magnet: magnet:\\?xt=urn:btih:${lt.infoHash}&dn=pkg\\.rpm&tr=http%3A%2F%2Ft%2Fann$`, 'm'));
  t.equal(r.stderr, '', 'no progress bar off a terminal');

  const s = await cli(['make', '-o', '-', 'pkg.rpm'], { cwd: dir });
  t.equal(s.code, 0, s.stderr);
  t.equal(s.stdoutBytes.subarray(0, 1).toString(), 'd', 'stdout is the torrent');
  writeFileSync(join(dir, 'from-stdout.torrent'), s.stdoutBytes);
  t.equal(ltInfo(join(dir, 'from-stdout.torrent')).infoHash, lt.infoHash);
  t.match(s.stderr, new RegExp(`^info hash: ${lt.infoHash}\\nmagnet: magnet:`));

  const j = await cli(['make', '-o', '-', '--json', 'pkg.rpm'], { cwd: dir });
  const result = JSON.parse(j.stderr);
  t.match(result, { infoHash: lt.infoHash, output: '-', name: 'pkg.rpm', size: 50 * K, pieceLength: 256 * K, files: 1, pieces: 1 });
});

t.test('a progress bar on a terminal', async (t) => {
  const dir = t.testdir({ f: randomBytes(2 * 1024 * K) });
  const r = await cli(['make', '-l', '16K', '-o', 'f.torrent', 'f'], { cwd: dir, tty: true });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /hashing/);
});

t.test('-l forms: size, mktorrent exponent, auto', async (t) => {
  t.equal(parseTorrentPieceLength('18'), 256 * K);
  t.equal(parseTorrentPieceLength('15'), 32 * K);
  t.throws(() => parseTorrentPieceLength('14'), /from 15 \(32K\) to 28/, "below mktorrent's exponents");
  t.equal(parseTorrentPieceLength('1M'), 1024 * K);
  t.equal(parseTorrentPieceLength('262144'), 256 * K);
  t.equal(parseTorrentPieceLength('auto'), 'auto');
  t.equal(parseTorrentPieceLength('16K'), 16 * K, 'as a size, 16K is allowed');
  t.throws(() => parseTorrentPieceLength('100K'), /power of two/);
  t.throws(() => parseTorrentPieceLength('8K'), /at least 16K/);
  // imdl's table: 2^(ceil(log2 size)/2 + 4), 16K..16M.
  t.equal(autoPieceLength(1), 16 * K);
  t.equal(autoPieceLength(100 * 1024 * K), 128 * K);
  t.equal(autoPieceLength(1024 * 1024 * K), 512 * K);
  t.equal(autoPieceLength(2 * 1024 * 1024 * K), 512 * K, 'E = 31');
  t.equal(autoPieceLength(2 * 1024 * 1024 * K + 1), 1024 * K, 'E = 32');
  t.equal(autoPieceLength(4_700_000_000), 1024 * K);
  t.equal(autoPieceLength(50 * 1024 * 1024 * K), 4096 * K);
  t.equal(autoPieceLength(2 ** 50), 16 * 1024 * K);

  const dir = t.testdir({ f: randomBytes(3 * 1024 * K) });
  const auto = await make(t, ['-l', 'auto', '-o', 'a.torrent', 'f'], dir);
  t.equal(auto.pieceLength, 32 * K, '3 MiB: E = 22, 2^(11 + 4)');
  const global = await make(t, ['--piece-length', '64K', '-o', 'g.torrent', 'f'], dir);
  t.equal(global.pieceLength, 64 * K, 'the global --piece-length works after make too');
  const dflt = await make(t, ['-o', 'd.torrent', 'f'], dir);
  t.equal(dflt.pieceLength, 256 * K, "mktorrent's default");
});

t.test('several paths are refused in the mktorrent layout', async (t) => {
  const dir = t.testdir({ a: 'x', b: 'y' });
  const r = await cli(['make', 'a', 'b'], { cwd: dir });
  t.equal(r.code, 2);
  t.match(r.stderr, /^pkgtorrent: make takes one PATH.*--layout service\n$/);
  t.same(readdirSync(dir).sort(), ['a', 'b']);
});

t.test('--force replaces, and an old output inside the tree is not content', async (t) => {
  const dir = t.testdir({ d: { f: randomBytes(1000) } });
  const first = await make(t, ['-l', '15', '-o', 'd/d.torrent', 'd'], dir);
  t.equal(first.files, 1);
  const again = await make(t, ['-l', '15', '--force', '-o', 'd/d.torrent', 'd'], dir);
  t.equal(again.infoHash, first.infoHash, 'the old torrent was left out');
  t.equal(again.files, 1);
  t.same(readdirSync(join(dir, 'd')).sort(), ['d.torrent', 'f'], 'no temporary file left');
});
