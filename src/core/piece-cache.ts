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
import { utimes, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { readCacheFileSync, writeFileAtomic } from './atomic.js';
import { HASH_LEN } from './hash-task.js';

export const MAGIC = Buffer.from('PKTPIECE', 'latin1');
export const FORMAT_VERSION = 1;
/** Section types. Numbers are part of the format: never reuse one. */
export const SECTION_SHA1_PIECES = 1;
const HEADER_LEN = 8 + 2 + 2 + 4 + 8 + 8;
const SECTION_HEADER_LEN = 8;

// Use time is the entry file's own mtime, refreshed at most this often so a
// busy service does not write to its cache on every request.
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

export function encodeEntry(p: FilePieces): Buffer {
  const body = p.tail ? Buffer.concat([p.full, p.tail.padded, p.tail.plain]) : p.full;
  const head = Buffer.alloc(HEADER_LEN + SECTION_HEADER_LEN);
  MAGIC.copy(head, 0);
  head.writeUInt16BE(FORMAT_VERSION, 8);
  head.writeUInt16BE(1, 10);
  head.writeUInt32BE(p.pieceLength, 12);
  head.writeBigUInt64BE(BigInt(p.size), 16);
  head.writeBigInt64BE(p.mtimeNs, 24);
  head.writeUInt16BE(SECTION_SHA1_PIECES, HEADER_LEN);
  head.writeUInt32BE(body.length, HEADER_LEN + 4);
  const sum = createHash('sha1').update(head).update(body).digest();
  return Buffer.concat([head, body, sum]);
}

/**
 * Decodes an entry, or returns null for anything not fully valid: wrong magic,
 * unknown version, bad length or checksum, inconsistent counts. The caller
 * still has to compare the stamp with the source file.
 */
export function decodeEntry(buf: Buffer): FilePieces | null {
  if (buf.length < HEADER_LEN + HASH_LEN) return null;
  if (!buf.subarray(0, 8).equals(MAGIC)) return null;
  if (buf.readUInt16BE(8) !== FORMAT_VERSION) return null;
  const end = buf.length - HASH_LEN;
  const sum = createHash('sha1').update(buf.subarray(0, end)).digest();
  if (!sum.equals(buf.subarray(end))) return null;
  const sections = buf.readUInt16BE(10);
  const pieceLength = buf.readUInt32BE(12);
  const size = buf.readBigUInt64BE(16);
  const mtimeNs = buf.readBigInt64BE(24);
  if (pieceLength === 0 || size > BigInt(Number.MAX_SAFE_INTEGER)) return null;
  let pos = HEADER_LEN;
  let sha1: Buffer | null = null;
  for (let i = 0; i < sections; i++) {
    if (pos + SECTION_HEADER_LEN > end) return null;
    const type = buf.readUInt16BE(pos);
    const len = buf.readUInt32BE(pos + 4);
    pos += SECTION_HEADER_LEN;
    if (pos + len > end) return null;
    if (type === SECTION_SHA1_PIECES) sha1 = buf.subarray(pos, pos + len);
    pos += len;
  }
  if (pos !== end || sha1 === null) return null;
  const n = Number(size);
  const full = fullPieceCount(n, pieceLength);
  const hasTail = n % pieceLength !== 0;
  if (sha1.length !== (full + (hasTail ? 2 : 0)) * HASH_LEN) return null;
  const fullEnd = full * HASH_LEN;
  return {
    pieceLength,
    size: n,
    mtimeNs,
    full: Buffer.from(sha1.subarray(0, fullEnd)),
    tail: hasTail
      ? { padded: Buffer.from(sha1.subarray(fullEnd, fullEnd + HASH_LEN)), plain: Buffer.from(sha1.subarray(fullEnd + HASH_LEN)) }
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
  constructor(readonly cacheDir: string) {}

  entryPath(relPath: string, pieceLength: number): string {
    return pieceEntryPath(this.cacheDir, relPath, pieceLength);
  }

  /** The cached hashes for a file with this stamp, or null when missing, stale or invalid. */
  async get(relPath: string, pieceLength: number, stamp: FileStamp): Promise<FilePieces | null> {
    const path = this.entryPath(relPath, pieceLength);
    const file = readCacheFileSync(path);
    const entry = file && decodeEntry(file.data);
    if (!entry || entry.pieceLength !== pieceLength || !sameStamp(entry, stamp)) return null;
    await refreshUseTime(path, file.mtimeMs);
    return entry;
  }

  /** Stores an entry atomically. Failure to cache is reported, never fatal to the caller's result. */
  async put(relPath: string, pieces: FilePieces): Promise<void> {
    this.write(relPath, pieces);
  }

  /** put, synchronously: it throws what the write throws. */
  write(relPath: string, pieces: FilePieces): void {
    writeFileAtomic(this.entryPath(relPath, pieces.pieceLength), encodeEntry(pieces));
  }
}

/**
 * Refreshes an entry's use time when it is older than the grain. `mtimeMs`
 * is the entry's current mtime when the caller already has it.
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
