// make's direct info encoder against the general bencode encoder over the
// same dictionary: the bytes (and so the info hash) must be identical.
import t from 'tap';
import bencode from 'bencode';
import { randomBytes } from 'node:crypto';
import { encodePlainInfo } from '../src/core/plain-torrent.js';
import { encodeInfo } from '../src/core/metainfo.js';
import { compareUtf8 } from '../src/core/file-list.js';

t.test('multi-file info is byte for byte what bencode writes', async (t) => {
  const files = [
    { length: 3, path: ['a.txt'] },
    { length: 0, path: ['dir', 'ñ', 'über.rpm'] },
    { length: 123456789012, path: ['日本', '😀.deb'] },
  ];
  // The entries as the walk encodes them, one dictionary per file.
  const fileEntries = Buffer.concat(files.map((f) => Buffer.from(bencode.encode(f))));
  const pieces = randomBytes(20 * 7);
  const content = { kind: 'multi' as const, totalSize: 123456789015, fileEntries, pieces };
  for (const extra of [{}, { private: true }, { source: 'Quellé' }, { private: true, source: 'x' }]) {
    const got = encodePlainInfo({ name: 'tórrent', content, pieceLength: 262144, ...extra });
    const want = encodeInfo({ kind: 'multi', name: 'tórrent', pieceLength: 262144, pieces, files, ...extra });
    t.ok(got.bytes.equals(want.bytes), `bytes equal with ${JSON.stringify(extra)}`);
    t.ok(got.infoHash.equals(want.infoHash), 'info hash equal');
  }
});

t.test('single-file info is byte for byte what bencode writes', async (t) => {
  const pieces = randomBytes(20);
  const content = { kind: 'single' as const, totalSize: 5, fileEntries: Buffer.alloc(0), pieces };
  const got = encodePlainInfo({ name: 'one.iso', content, pieceLength: 16384, private: true });
  const want = encodeInfo({ kind: 'single', name: 'one.iso', pieceLength: 16384, pieces, length: 5, private: true });
  t.ok(got.bytes.equals(want.bytes));
});

t.test('paths sort in the byte order of their UTF-8, as strcmp sorts them', async (t) => {
  // '.' < '/', upper case first, and a character above U+FFFF (a surrogate
  // pair in UTF-16) after U+E000-FFFF, where UTF-16 order would differ.
  const names = ['a/b', 'a.txt', 'B', 'a', '\uffff', '\u{1F600}', '\ue000x', 'é', 'z', ''];
  const bytes = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
  t.same([...names].sort(compareUtf8), bytes);
  t.not([...names].sort().join('|'), bytes.join('|'), 'the plain string sort differs here, so the test can tell');
});
