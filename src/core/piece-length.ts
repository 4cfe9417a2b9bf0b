// The piece length of one torrent made from a shell: a size, mktorrent's
// exponent, or a rule that grows with the content (imdl's).
import { usageError } from './errors.js';
import { parsePieceLength } from './size.js';

/** mktorrent's default, 2^18. */
export const MKTORRENT_PIECE_LENGTH = 256 * 1024;
const AUTO_MIN = 16 * 1024;
const AUTO_MAX = 16 * 1024 * 1024;

export type PieceLengthSpec = number | 'auto';

/** Parses make's -l: "auto", mktorrent's exponent (15..28, as mktorrent takes it) or a size. */
export function parseTorrentPieceLength(text: string): PieceLengthSpec {
  const t = text.trim();
  if (t.toLowerCase() === 'auto') return 'auto';
  // A bare number this small cannot be a valid size in bytes, so it is
  // unambiguously mktorrent's exponent.
  if (/^\d{1,2}$/.test(t)) {
    const n = Number(t);
    if (n < 15 || n > 28) throw usageError(`invalid piece length '${text}': as an exponent it must be from 15 (32K) to 28 (256M), as for mktorrent; or give a size (16K)`);
    return 2 ** n;
  }
  return parsePieceLength(t);
}

/** imdl's piece length for a total size: 2^(E/2 + 4), E = ceil(log2 size), kept within 16K..16M. */
export function autoPieceLength(totalSize: number): number {
  let e = 0;
  while (2 ** e < Math.max(totalSize, 1)) e++;
  return Math.min(AUTO_MAX, Math.max(AUTO_MIN, 2 ** (Math.floor(e / 2) + 4)));
}

export function resolvePieceLength(spec: PieceLengthSpec | undefined, totalSize: number): number {
  return spec === 'auto' ? autoPieceLength(totalSize) : (spec ?? MKTORRENT_PIECE_LENGTH);
}
