// The piece cache of pkgtorrent-service(8), CACHE LAYOUT: per file and piece length, the SHA-1 of
// every full piece plus, for a short last piece, its zero-padded and its plain
// SHA-1. Valid while the source file's size and mtime are unchanged.
//
// Entry layout (all integers big-endian):
//
//   magic      8   "PKTPIECE"
//   version    2   FORMAT_VERSION
//   sections   2   number of sections that follow
//   pieceLen   4
//   size       8   source file size
//   mtimeNs    8   source file mtime in nanoseconds (signed)
//   section*       type u16, reserved u16, length u32, then `length` bytes
//   checksum  20   SHA-1 of everything above
//
// Section SHA1_PIECES holds the full-piece hashes, then padded and plain tail
// hashes when the size is not a multiple of the piece length. Sections let a
// later writer add, say, BitTorrent v2 SHA-256 piece layers beside the SHA-1
// list without a new version; readers skip section types they do not know.
// A change that old readers must not misread bumps FORMAT_VERSION instead.
//
// The entry file's times (version 2): its mtime is the source file's mtime
// and its atime is the entry's last use. So `hash` tells a current entry from
// a stale one by a stat of each file alone (see isCurrentEntry), never
// reading the entry; whoever uses an entry's hashes still reads and fully
// validates it. Version 1 entries have the same bytes but their mtime was the
// use time; they are still read, and `hash` rewrites them as version 2.
// Version 2 exists so that an older pkgtorrent, which would take the source's
// mtime for a use time (and evict by it), treats these entries as invalid.
import { utimes, stat } from 'node:fs/promises';
import { utimesSync } from 'node:fs';
import { join, sep } from 'node:path';
import { readCacheFileSync, writeFileAtomic } from './atomic.js';
import { HASH_LEN, sha1 } from './hash-task.js';

export const MAGIC = Buffer.from('PKTPIECE', 'latin1');
export const FORMAT_VERSION = 2;
/** Versions decodeEntry accepts: the same bytes, different meaning of the file's times. */
const READABLE_VERSIONS: readonly number[] = [1, 2];
/** Section types. Numbers are part of the format: never reuse one. */
export const SECTION_SHA1_PIECES = 1;
const HEADER_LEN = 8 + 2 + 2 + 4 + 8 + 8;
const SECTION_HEADER_LEN = 8;

// Use time is refreshed at most this often so a busy service does not write
// to its cache on every request (for an entry: its atime, see above; for a
// version 1 entry and an info entry: its mtime).
export const USE_TIME_GRAIN_MS = 24 * 3600 * 1000;

/** The identity of a source file as the cache sees it. */
export interface FileStamp {
  size: number;
  mtimeNs: bigint;
}

export interface FilePieces extends FileStamp {
  pieceLength: number;
  /** SHA-1 of each full piece, HASH_LEN bytes each. */
  full: Buffer;
  /** Present exactly when size is not a multiple of pieceLength. */
  tail: { padded: Buffer; plain: Buffer } | null;
}

export function fullPieceCount(size: number, pieceLength: number): number {
  return Math.floor(size / pieceLength);
}

/** The length of the entry this module writes for a file of `size` bytes. */
export function entryLength(size: number, pieceLength: number): number {
  const hashes = fullPieceCount(size, pieceLength) + (size % pieceLength === 0 ? 0 : 2);
  return HEADER_LEN + SECTION_HEADER_LEN + hashes * HASH_LEN + HASH_LEN;
}

/**
 * The source mtime as an entry's mtime is set to, in seconds: utimes takes a
 * double, so this is the source's to within a fraction of a microsecond.
 * Always the same for the same stamp, so a refresh never moves it.
 */
export function entryMtimeSeconds(mtimeNs: bigint): number {
  return Number(mtimeNs) / 1e9;
}

/** How far apart an entry's mtime and its source's may be: utimes' rounding (see entryMtimeSeconds). */
const MTIME_SLACK_MS = 0.002;

/**
 * Whether a version 2 entry is current for its source, from the two files'
 * stats alone: the entry's mtime is the source's and its size is the one an
 * entry for that size has. What `hash` uses to decide there is nothing to do;
 * it is not validation (a reader of the entry still decodes and checks it).
 */
export function isCurrentEntry(
  entry: { size: number; mtimeMs: number },
  source: { size: number; mtimeMs: number },
  pieceLength: number,
): boolean {
  return entry.size === entryLength(source.size, pieceLength) && Math.abs(entry.mtimeMs - source.mtimeMs) <= MTIME_SLACK_MS;
}

/**
 * An entry's last use, from its stat: its atime. For a version 1 entry too,
 * whose use time was its mtime: every write and refresh set both times, and a
 * read (a use) only moves the atime later.
 */
export function entryUseTimeMs(st: { atimeMs: number }): number {
  return st.atimeMs;
}

/**
 * The entry's bytes, made in one buffer with a one-shot checksum: `hash`
 * encodes one per file of a cold mirror, where two concatenations and a
 * Hash object per entry showed in profiles (see shortPadded in hash-run.ts
 * for what the two changes measured together).
 */
export function encodeEntry(p: FilePieces): Buffer {
  const bodyLen = p.full.length + (p.tail ? p.tail.padded.length + p.tail.plain.length : 0);
  const end = HEADER_LEN + SECTION_HEADER_LEN + bodyLen;
  const buf = Buffer.allocUnsafe(end + HASH_LEN);
  MAGIC.copy(buf, 0);
  buf.writeUInt16BE(FORMAT_VERSION, 8);
  buf.writeUInt16BE(1, 10);
  buf.writeUInt32BE(p.pieceLength, 12);
  buf.writeBigUInt64BE(BigInt(p.size), 16);
  buf.writeBigInt64BE(p.mtimeNs, 24);
  buf.writeUInt16BE(SECTION_SHA1_PIECES, HEADER_LEN);
  buf.writeUInt16BE(0, HEADER_LEN + 2);
  buf.writeUInt32BE(bodyLen, HEADER_LEN + 4);
  let pos = HEADER_LEN + SECTION_HEADER_LEN;
  pos += p.full.copy(buf, pos);
  if (p.tail) {
    pos += p.tail.padded.copy(buf, pos);
    p.tail.plain.copy(buf, pos);
  }
  sha1(buf.subarray(0, end)).copy(buf, end);
  return buf;
}

/** The version of an entry that decodeEntry accepted. */
export function entryVersion(buf: Buffer): number {
  return buf.readUInt16BE(8);
}

/**
 * Decodes an entry, or returns null for anything not fully valid: wrong magic,
 * unknown version, bad length or checksum, inconsistent counts. The caller
 * still has to compare the stamp with the source file.
 */
export function decodeEntry(buf: Buffer): FilePieces | null {
  if (buf.length < HEADER_LEN + HASH_LEN) return null;
  if (!buf.subarray(0, 8).equals(MAGIC)) return null;
  const version = buf.readUInt16BE(8);
  if (!READABLE_VERSIONS.includes(version)) return null;
  const end = buf.length - HASH_LEN;
  const sum = sha1(buf.subarray(0, end));
  if (!sum.equals(buf.subarray(end))) return null;
  const sections = buf.readUInt16BE(10);
  const pieceLength = buf.readUInt32BE(12);
  const size = buf.readBigUInt64BE(16);
  const mtimeNs = buf.readBigInt64BE(24);
  if (pieceLength === 0 || size > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  let pos = HEADER_LEN;
  let hashes: Buffer | null = null;
  for (let i = 0; i < sections; i++) {
    if (pos + SECTION_HEADER_LEN > end) return null;
    const type = buf.readUInt16BE(pos);
    const len = buf.readUInt32BE(pos + 4);
    pos += SECTION_HEADER_LEN;
    if (pos + len > end) return null;
    if (type === SECTION_SHA1_PIECES) hashes = buf.subarray(pos, pos + len);
    pos += len;
  }
  if (pos !== end || hashes === null) return null;
  const n = Number(size);
  const full = fullPieceCount(n, pieceLength);
  const hasTail = n % pieceLength !== 0;
  if (hashes.length !== (full + (hasTail ? 2 : 0)) * HASH_LEN) return null;
  const fullEnd = full * HASH_LEN;
  return {
    pieceLength,
    size: n,
    mtimeNs,
    full: Buffer.from(hashes.subarray(0, fullEnd)),
    tail: hasTail
      ? { padded: Buffer.from(hashes.subarray(fullEnd, fullEnd + HASH_LEN)), plain: Buffer.from(hashes.subarray(fullEnd + HASH_LEN)) }
      : null,
  };
}

export function sameStamp(a: FileStamp, b: FileStamp): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs;
}

export const PIECES_DIR = 'pieces';

/** `<cache>/pieces/<root-relative path>/<piece length>`; relPath is already validated. */
export function pieceEntryPath(cacheDir: string, relPath: string, pieceLength: number): string {
  return join(cacheDir, PIECES_DIR, relPath, String(pieceLength));
}

/** The inverse of pieceEntryPath, from an entry's path segments under the cache dir. */
export function pieceEntrySource(segments: readonly string[]): { rel: string; pieceLength: number } {
  return { rel: segments.slice(1, -1).join('/'), pieceLength: Number(segments[segments.length - 1]) };
}

export class PieceCache {
  private readonly prefix: string;

  constructor(readonly cacheDir: string) {
    this.prefix = join(cacheDir, PIECES_DIR) + sep;
  }

  /**
   * pieceEntryPath, by concatenation: a root-relative path, validated or
   * made of names read from directories, has no empty, '.' or '..' segment
   * for path.join to normalise away, so the string is the same. `hash` makes
   * one per file of the tree, and the normalising was a tenth of a warm run.
   */
  entryPath(relPath: string, pieceLength: number): string {
    return this.prefix + relPath + sep + pieceLength;
  }

  /** The cached hashes for a file with this stamp, or null when missing, stale or invalid. */
  async get(relPath: string, pieceLength: number, stamp: FileStamp): Promise<FilePieces | null> {
    return (await this.read(relPath, pieceLength, stamp))?.pieces ?? null;
  }

  /** get, with the version the entry was written in. */
  async read(relPath: string, pieceLength: number, stamp: FileStamp): Promise<{ pieces: FilePieces; version: number } | null> {
    const path = this.entryPath(relPath, pieceLength);
    const file = readCacheFileSync(path);
    const entry = file && decodeEntry(file.data);
    if (!entry || entry.pieceLength !== pieceLength || !sameStamp(entry, stamp)) return null;
    const version = entryVersion(file.data);
    if (version === 1) await refreshUseTime(path, file.mtimeMs);
    else refreshEntryUseSync(path, entryUseTimeMs(file), entry.mtimeNs);
    return { pieces: entry, version };
  }

  /**
   * Stores an entry atomically, used now, with the source's mtime. Throws
   * what the write throws: the caller reports it (a failure to cache is never
   * fatal to its result).
   */
  write(relPath: string, pieces: FilePieces, now = Date.now()): void {
    const times = { atime: now / 1000, mtime: entryMtimeSeconds(pieces.mtimeNs) };
    writeFileAtomic(this.entryPath(relPath, pieces.pieceLength), encodeEntry(pieces), 0o644, times);
  }
}

/**
 * Refreshes an entry's use time when it is older than the grain. `mtimeMs`
 * is the entry's current mtime when the caller already has it. For info
 * entries and version 1 piece entries, whose use time is their mtime.
 */
export async function refreshUseTime(path: string, mtimeMs?: number, now = Date.now()): Promise<void> {
  try {
    const last = mtimeMs ?? (await stat(path)).mtimeMs;
    if (now - last < USE_TIME_GRAIN_MS) return;
    const t = new Date(now);
    await utimes(path, t, t);
  } catch {
    // A read-only cache or a concurrent clean: the entry is still good for this use.
  }
}

/**
 * The same for a version 2 piece entry: its atime is the use time, its mtime
 * stays the source's. Synchronous, as every cache write is (see atomic.ts):
 * one utimes of a small file, for a read or for the `hash` walk.
 */
export function refreshEntryUseSync(path: string, lastUseMs: number, mtimeNs: bigint, now = Date.now()): void {
  if (now - lastUseMs < USE_TIME_GRAIN_MS) return;
  try {
    utimesSync(path, now / 1000, entryMtimeSeconds(mtimeNs));
  } catch {
    // As above.
  }
}
