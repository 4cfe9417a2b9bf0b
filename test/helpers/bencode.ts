// Oracles for assertions, independent of src/. Decodes a torrent for assertions: byte strings become UTF-8 text except
// `pieces`, which stays a Buffer. (bencode's own decode(data, 'utf8') throws
// in version 4, so we convert after decoding.)
import bencode from 'bencode';
import { createHash } from 'node:crypto';

function convert(v: unknown, key?: string): unknown {
  if (v instanceof Uint8Array) return key === 'pieces' ? Buffer.from(v) : Buffer.from(v).toString('utf8');
  if (Array.isArray(v)) return v.map((x) => convert(x));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, convert(x, k)]));
  return v;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function decodeTorrent(bytes: Uint8Array): any {
  return convert(bencode.decode(bytes));
}

/** SHA-1 of every `pieceLength` bytes of `stream`, the last piece short: an independent oracle for the hasher. */
export function pieceHashes(stream: Buffer, pieceLength: number): Buffer {
  const out: Buffer[] = [];
  for (let off = 0; off < stream.length; off += pieceLength) out.push(createHash('sha1').update(stream.subarray(off, off + pieceLength)).digest());
  return Buffer.concat(out);
}
