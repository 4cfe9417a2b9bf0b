// make's file list: the walk's order against mktorrent's on names whose
// order differs between UTF-16, per-directory and whole-path byte order;
// the stream hashed in chunks against an independent computation; a file
// changed between listing and reading; and the walk staying a few chunks
// ahead of the hashers instead of listing the whole tree first.
import t from 'tap';
import bencode from 'bencode';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openContent } from '../src/core/file-list.js';
import { hashContent, type HashedContent } from '../src/core/content-hash.js';
import { HashPool } from '../src/core/hasher.js';
import { encodePlainInfo } from '../src/core/plain-torrent.js';
import { need, ltInfo, mktorrentHash } from './helpers/oracles.js';
import { pieceHashes } from './helpers/bencode.js';

const K = 1024;

async function hashed(dir: string, pieceLength: number, opts: { jobs?: number; onFile?: (display: string, size: number) => void; onProgress?: (n: number) => void } = {}): Promise<HashedContent> {
  const pool = new HashPool(opts.jobs ?? 2, { inline: true });
  try {
    return await hashContent(pool, openContent(dir), { pieceLength, onFile: opts.onFile, onProgress: opts.onProgress });
  } finally {
    await pool.close();
  }
}

/** The info hash of `dir` as make builds it (no -p, -s). */
function infoHash(content: HashedContent, name: string, pieceLength: number): string {
  return encodePlainInfo({ name, content, pieceLength }).infoHash.toString('hex');
}

t.test('order: whole-path byte order, across directories, against mktorrent', async (t) => {
  if (!need(t, 'mktorrent') || !need(t, 'libtorrent')) return;
  // Per directory, 'a' (a directory) and 'a-b', 'a b', 'a0': the whole
  // paths "a-b", "a b/x" sort before "a/y" ('-', ' ' < '/'), "a0" after.
  // U+E000 (EE 80 80) sorts before U+1F600 (F0 9F 98 80) by bytes, after it
  // in UTF-16 (D83D DE00). Hidden, empty, nested.
  const dir = t.testdir({
    d: {
      a: { y: randomBytes(70), '.h': randomBytes(3), e: '' },
      'a-b': randomBytes(5),
      'a b': { x: randomBytes(40 * K + 1) },
      a0: randomBytes(9),
      '\ue000': { '\u{1F600}': randomBytes(11), '\ue000': randomBytes(12) },
      '\u{1F600}': { z: randomBytes(13) },
      B: '',
      deep: { er: { est: { f: randomBytes(20 * K) } } },
    },
  });
  const d = join(dir, 'd');
  const listed: string[] = [];
  const content = await hashed(d, 32 * K, { onFile: (p) => listed.push(p.slice(d.length + 1)) });
  t.equal(infoHash(content, 'd', 32 * K), mktorrentHash(d, 15, join(dir, 'mk.torrent')), "mktorrent's info hash");
  const want = ['B', 'a b/x', 'a-b', 'a/.h', 'a/e', 'a/y', 'a0', 'deep/er/est/f', '\ue000/\ue000', '\ue000/\u{1F600}', '\u{1F600}/z'];
  t.same(listed, want, 'listed in that order');
  t.same(
    ltInfo(join(dir, 'mk.torrent')).files.map((f) => f.path.slice(2)),
    want,
    'mktorrent orders them so too',
  );
});

t.test('the stream hashed in chunks: files across chunk and piece boundaries', async (t) => {
  // 300 files of odd sizes end a chunk at a piece boundary inside a file (a
  // chunk is cut after 256 files); a file of 9 MiB spans several 4 MiB
  // chunks; empty files between. Against hashing the concatenation.
  const files: Record<string, Buffer | string> = {};
  for (let i = 0; i < 300; i++) files[`s${String(i).padStart(3, '0')}`] = randomBytes(5000 + i);
  files['t-big'] = randomBytes(9 * 1024 * K + 123);
  files['t-empty'] = '';
  files['u'] = randomBytes(17);
  const dir = t.testdir({ d: files });
  const names = Object.keys(files).sort();
  const stream = Buffer.concat(names.map((n) => readFileSync(join(dir, 'd', n))));
  for (const [pieceLength, jobs] of [
    [16 * K, 2],
    [256 * K, 1],
    [4 * 1024 * K, 2],
  ] as const) {
    const content = await hashed(join(dir, 'd'), pieceLength, { jobs });
    t.ok(content.pieces.equals(pieceHashes(stream, pieceLength)), `pieces at ${pieceLength}, ${jobs} jobs`);
    t.equal(content.totalSize, stream.length);
    t.equal(content.files, names.length);
    const info = { files: names.map((n) => ({ length: files[n]!.length, path: [n] })), name: 'd', 'piece length': pieceLength, pieces: content.pieces };
    t.equal(infoHash(content, 'd', pieceLength), createHash('sha1').update(bencode.encode(info)).digest('hex'), 'files entries as bencode writes them');
  }
});

t.test('a file that changes between its listing and its reading fails the run', async (t) => {
  const dir = t.testdir({ d: { a: randomBytes(1000), b: randomBytes(1000), c: '', other: randomBytes(1000) } });
  const d = join(dir, 'd');
  // onFile runs when a file is listed, before the hashers read it.
  const cases: Array<[string, string, () => void]> = [
    ['grown', 'a', () => appendFileSync(join(d, 'a'), 'more')],
    ['replaced', 'b', () => renameSync(join(d, 'other'), join(d, 'b'))],
    ['written to while empty', 'c', () => writeFileSync(join(d, 'c'), 'x')],
  ];
  for (const [what, name, change] of cases) {
    await t.rejects(
      hashed(d, 16 * K, { onFile: (p) => p.endsWith(`/${name}`) && change() }),
      { name: 'PkgError', kind: 'changed', message: new RegExp(`^${d}/${name}: changed while it was hashed`) },
      what,
    );
  }
});

t.test('the walk runs a few chunks ahead of the hashers, not the whole tree', async (t) => {
  // 40 directories of 100 files of 64 bytes: a chunk is cut after 256
  // files, here exactly one 16K piece. With two hashers at most 8 chunks
  // are outstanding, so hashes come back before the last files are listed.
  const layout: Record<string, Record<string, Buffer>> = {};
  for (let i = 0; i < 40; i++) {
    const files: Record<string, Buffer> = {};
    for (let j = 0; j < 100; j++) files[`f${j}`] = randomBytes(64);
    layout[`d${String(i).padStart(2, '0')}`] = files;
  }
  const dir = t.testdir({ tree: layout });
  const events: string[] = [];
  const content = await hashed(join(dir, 'tree'), 16 * K, { onFile: () => events.push('file'), onProgress: () => events.push('hashed') });
  t.equal(content.files, 4000);
  const firstHashed = events.indexOf('hashed');
  t.ok(firstHashed > 0 && firstHashed < events.lastIndexOf('file'), `hashes came back after ${firstHashed} of 4000 files were listed`);
  t.ok(firstHashed <= 8 * 256 + 1, 'no more than 8 chunks listed ahead');
});
