// The service layout of pkgtorrent-service(8), TORRENT LAYOUT, checked against an independent
// computation over the padded byte stream and against libtorrent.
import t, { type Test } from 'tap';
import bencode from 'bencode';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HashPool } from '../src/core/hasher.js';
import { PieceCache } from '../src/core/piece-cache.js';
import { PieceStore } from '../src/core/piece-store.js';
import { MirrorRoot } from '../src/core/root.js';
import { buildServiceInfo, serviceTorrent } from '../src/core/service-layout.js';
import { sha1 } from '../src/core/metainfo.js';
import { trackerTiers } from '../src/core/trackers.js';
import { need, ltInfo } from './helpers/oracles.js';
import { decodeTorrent, pieceHashes } from './helpers/bencode.js';

const PL = 16384;
// Awkward sizes: tiny, exact multiple, one byte over, empty, several pieces.
const SIZES: Record<string, number> = { 'a/tiny.rpm': 5, 'b.rpm': PL * 2, 'c.rpm': PL + 1, 'd.rpm': 0, 'e.rpm': PL * 3 + 100, 'f.rpm': 7 };

function padded(data: Buffer[], pl: number): Buffer {
  // Every file but the last is followed by zeros up to a piece boundary.
  return Buffer.concat(data.flatMap((d, i) => (i < data.length - 1 && d.length % pl ? [d, Buffer.alloc(pl - (d.length % pl))] : [d])));
}

async function fixture(t: Test) {
  const dir = t.testdir({ root: { pub: { a: {} } }, cache: {} });
  const data: Record<string, Buffer> = {};
  for (const [name, size] of Object.entries(SIZES)) {
    data[name] = randomBytes(size);
    writeFileSync(join(dir, 'root/pub', name), data[name]);
  }
  const pool = new HashPool(2);
  t.teardown(() => pool.close());
  return { dir, data, root: await MirrorRoot.open(join(dir, 'root')), store: new PieceStore(new PieceCache(join(dir, 'cache')), pool) };
}

t.test('multi-file: padding entries, alignment, last-file rule, pieces', async (t) => {
  const { dir, data, root, store } = await fixture(t);
  const names = Object.keys(SIZES);
  const files = names.map((n) => root.file(`/pub/${n}`));
  const { info } = await buildServiceInfo(store, files, 'multi', PL, 'torrent_service');
  const d = decodeTorrent(info.bytes);
  t.equal(d.name, 'pub');
  t.equal(d['piece length'], PL);
  t.same(
    d.files.map((f: { path: string[]; length: number; attr?: string }) => [f.path.join('/'), f.length, f.attr ?? '']),
    [
      ['a/tiny.rpm', 5, ''],
      ['torrent_service/nullfile/16379_0', PL - 5, 'p'],
      ['b.rpm', PL * 2, ''],
      ['c.rpm', PL + 1, ''],
      ['torrent_service/nullfile/16383_0', PL - 1, 'p'],
      ['d.rpm', 0, ''],
      ['e.rpm', PL * 3 + 100, ''],
      ['torrent_service/nullfile/16284_0', PL - 100, 'p'],
      ['f.rpm', 7, ''],
    ],
    'files with pad entries after every file not ending on a piece boundary, except the last',
  );
  const want = pieceHashes(padded(names.map((n) => data[n]!), PL), PL);
  t.equal(d.pieces.length, want.length, 'piece count');
  t.ok(info.infoHash.equals(sha1(info.bytes)), 'info hash is SHA-1 of the info bytes');
  t.ok(d.pieces.equals(want), 'pieces equal SHA-1 over the padded stream');

  // Same pad size twice counts up k: f.rpm and g.rpm both end 7 bytes into a piece.
  writeFileSync(join(dir, 'root/pub/g.rpm'), randomBytes(PL + 7));
  const { info: twice } = await buildServiceInfo(store, ['pub/f.rpm', 'pub/b.rpm', 'pub/g.rpm', 'pub/a/tiny.rpm', 'pub/e.rpm'].map((p) => root.file(p)), 'multi', PL);
  const paths = decodeTorrent(twice.bytes).files.map((f: { path: string[] }) => f.path.join('/'));
  t.same(
    paths,
    ['f.rpm', 'torrent_service/nullfile/16377_0', 'b.rpm', 'g.rpm', 'torrent_service/nullfile/16377_1', 'a/tiny.rpm', 'torrent_service/nullfile/16379_0', 'e.rpm'],
    'the second pad of the same size is _1, a pad of another size starts at _0',
  );

  const torrent = serviceTorrent(info, 'http://mirror.example', ['http://t1.example/announce', 'udp://t2.example:6969']);
  const path = join(dir, 'multi.torrent');
  writeFileSync(path, torrent);
  if (!need(t, 'libtorrent')) return;
  const lt = ltInfo(path);
  t.equal(lt.infoHash, info.infoHash.toString('hex'), 'libtorrent computes the same info hash');
  t.equal(lt.numPieces, want.length / 20);
  t.same(
    lt.files.filter((f) => f.pad).map((f) => f.size),
    [PL - 5, PL - 1, PL - 100],
    'libtorrent sees the padding entries as pad files',
  );
  t.same(lt.webSeeds, ['http://mirror.example/']);
  t.equal(lt.trackers.length, 2);
});

t.test('single file: no padding, plain last piece, web seed is the directory', async (t) => {
  const { dir, data, root, store } = await fixture(t);
  const file = root.file('pub/a/tiny.rpm');
  const { info } = await buildServiceInfo(store, [file], 'single', PL);
  const d = decodeTorrent(info.bytes);
  t.equal(d.name, 'tiny.rpm');
  t.equal(d.length, 5);
  t.ok(d.pieces.equals(createHash('sha1').update(data['a/tiny.rpm']!).digest()));
  const torrent = decodeTorrent(serviceTorrent(info, 'http://m.example/', []));
  t.same(torrent['url-list'], ['http://m.example/pub/a/'], 'url-list is the file directory');
  t.notOk('announce' in torrent, 'no trackers: no announce');
  t.notOk('announce-list' in torrent, 'no trackers: no announce-list');
  if (!need(t, 'libtorrent')) return;
  const path = join(dir, 'single.torrent');
  writeFileSync(path, serviceTorrent(info, 'http://m.example', []));
  const lt = ltInfo(path);
  t.equal(lt.files.length, 1);
  t.equal(lt.totalSize, 5);
});

t.test('files that cannot share a torrent are refused', async (t) => {
  const dir = t.testdir({ root: { pub: { 'x.rpm': 'x' }, other: { 'y.rpm': 'y' }, 'top.rpm': 't' }, cache: {} });
  const root = await MirrorRoot.open(join(dir, 'root'));
  const pool = new HashPool(1);
  t.teardown(() => pool.close());
  const store = new PieceStore(null, pool);
  await t.rejects(buildServiceInfo(store, [root.file('pub/x.rpm'), root.file('other/y.rpm')], 'multi', PL), { name: 'PkgError', kind: 'bad-request', message: /different first segments/ });
  await t.rejects(buildServiceInfo(store, [root.file('top.rpm')], 'multi', PL), { name: 'PkgError', kind: 'bad-request' });
  await t.rejects(buildServiceInfo(store, [root.file('pub/x.rpm'), root.file('pub/x.rpm')], 'multi', PL), { name: 'PkgError', kind: 'bad-request', message: /twice/ });
});

t.test('tracker tiers: one per tier, salted by info hash, announce is the first', async (t) => {
  const urls = Array.from({ length: 6 }, (_, i) => `http://t${i}.example/announce`);
  const a = trackerTiers(urls, 'aa'.repeat(20));
  const b = trackerTiers(urls, 'bb'.repeat(20));
  t.ok(a.every((tier) => tier.length === 1));
  t.same(a.flat().sort(), [...urls].sort());
  t.notSame(a, b, 'another info hash gives another order');
  const keys = a.map(([u]) => sha1(u! + 'aa'.repeat(20)).toString('hex'));
  t.same(keys, [...keys].sort(), 'ordered by sha1(url + infohash) ascending');
  const info = { bytes: Buffer.from('d4:name1:xe'), infoHash: sha1('d4:name1:xe'), webSeedSuffix: '' };
  const torrent = decodeTorrent(serviceTorrent(info, 'http://m', urls));
  t.equal(torrent.announce, torrent['announce-list'][0][0]);
  t.same(torrent['announce-list'], trackerTiers(urls, info.infoHash.toString('hex')));
  t.same(bencode.decode(serviceTorrent(info, 'http://m', urls)).info, bencode.decode(info.bytes), 'info spliced in as it is');
});
