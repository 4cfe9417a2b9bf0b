import { usageError } from './errors.js';

export const MIN_PIECE_LENGTH = 16 * 1024;
// mktorrent accepts up to 2^28; larger pieces only make swarms worse.
export const MAX_PIECE_LENGTH = 256 * 1024 * 1024;
export const DEFAULT_PIECE_LENGTH = 1024 * 1024;

const UNITS: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/** Parses "262144", "256K", "1M", "2G" (binary units, optional trailing B/iB). */
export function parseSize(text: string, what = 'size'): number {
  const m = /^\s*(\d+)\s*([KMG]?)(?:i?B)?\s*$/i.exec(text);
  if (!m) throw usageError(`invalid ${what} '${text}': expected a number with an optional K, M or G suffix`);
  const value = Number(m[1]) * UNITS[m[2]!.toUpperCase()]!;
  if (!Number.isSafeInteger(value)) throw usageError(`invalid ${what} '${text}': too large`);
  return value;
}

export function parsePieceLength(text: string | number): number {
  const n = typeof text === 'number' ? text : parseSize(text, 'piece length');
  const label = typeof text === 'number' ? String(text) : text;
  if (n < MIN_PIECE_LENGTH) {
    // "18" is mktorrent's exponent, which only make -l takes: everywhere else a bare number is bytes.
    const hint = typeof text === 'string' && /^\s*\d{1,2}\s*$/.test(text) ? ` (a bare number is bytes; for 2^${n} write ${formatPieceLength(2 ** n)})` : '';
    throw usageError(`invalid piece length '${label}': must be at least 16K${hint}`);
  }
  if (n > MAX_PIECE_LENGTH) throw usageError(`invalid piece length '${label}': must be at most 256M`);
  if ((n & (n - 1)) !== 0) throw usageError(`invalid piece length '${label}': must be a power of two`);
  return n;
}

/** 262144 as "256K": how help and messages spell a piece length. */
function formatPieceLength(n: number): string {
  return n >= 1024 ** 2 && n % 1024 ** 2 === 0 ? `${n / 1024 ** 2}M` : n % 1024 === 0 ? `${n / 1024}K` : String(n);
}

const DURATION_UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 7 * 86400 };

/** Parses "300ms", "90s", "15m", "12h", "30d", "2w" into milliseconds. A bare number is seconds. */
export function parseDuration(text: string, what = 'duration'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|[smhdw]?)\s*$/i.exec(text);
  if (!m) throw usageError(`invalid ${what} '${text}': expected a number with a unit: ms, s, m, h, d or w (300ms, 5s, 30d)`);
  return Math.round(Number(m[1]) * DURATION_UNITS[(m[2] || 's').toLowerCase()]! * 1000);
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  // Rates are fractions: 545.45 bytes a second is shown as 545 B.
  return i === 0 ? `${Math.round(n)} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}
