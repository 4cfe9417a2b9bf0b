// The info cache's entry format: per digest, the bencoded info dictionary of
// a service torrent, its info hash, its web-seed suffix and the stamps of the
// files it was built from. A hit costs one read and no hashing; the info
// bytes are spliced into the torrent as they are (serviceTorrent).
//
// Entry `<cache>/info/<key>` where key is `<digest>` (multi-file) or
// `<digest>_s` (simple mode, single file). Layout, integers big-endian:
//
//   magic         8   "PKTINFO\n"
//   version       2   FORMAT_VERSION
//   kind          1   0 single, 1 multi
//   reserved      1   0
//   pieceLength   4
//   infoHash     20   SHA-1 of the info bytes (checked on read too)
//   serviceName   2+n length, UTF-8 (padding paths name the service)
//   name          2+n length, UTF-8
//   suffix        2+n length, UTF-8 web-seed suffix
//   info          4+n length, bencoded info dictionary
//   fileCount     4
//   file*         2+n rel path UTF-8, size u64, mtimeNs i64
//   checksum     20   SHA-1 of everything above
//
// Writes are atomic (writeFileAtomic); a reader treats anything it cannot
// fully validate as missing. Use time is the entry's own mtime, refreshed at
// most once per USE_TIME_GRAIN_MS (refreshUseTime), as in the piece cache.
import { join } from 'node:path';
import { readCacheFileSync, writeFileAtomic } from './atomic.js';
import { LOCK_SUFFIX } from './build-lock.js';
import { HASH_LEN, sha1 } from './hash-task.js';
import { sameStamp, type FileStamp } from './piece-cache.js';
import type { ServiceInfo, ServiceKind } from './service-layout.js';

export const MAGIC = Buffer.from('PKTINFO\n', 'latin1');
export const FORMAT_VERSION = 1;

export interface InfoEntry extends ServiceInfo {
  kind: ServiceKind;
  pieceLength: number;
  serviceName: string;
}

/** `<digest>` or `<digest>_s`: 40 lowercase hex digits. */
export function isInfoKey(name: string): boolean {
  return /^[0-9a-f]{40}(_s)?$/.test(name);
}

export const INFO_DIR = 'info';

export function infoDir(cacheDir: string): string {
  return join(cacheDir, INFO_DIR);
}

export function infoEntryPath(cacheDir: string, key: string): string {
  if (!isInfoKey(key)) throw new Error(`invalid info cache key '${key}'`);
  return join(infoDir(cacheDir), key);
}

/** `<key>.lock`, the build lock beside an entry. */
export function isLockName(name: string): boolean {
  return name.endsWith(LOCK_SUFFIX) && isInfoKey(name.slice(0, -LOCK_SUFFIX.length));
}

function str16(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length > 0xffff) throw new Error('string too long for an info cache entry');
  const out = Buffer.alloc(2 + b.length);
  out.writeUInt16BE(b.length, 0);
  b.copy(out, 2);
  return out;
}

export function encodeInfoEntry(e: InfoEntry): Buffer {
  const head = Buffer.alloc(8 + 2 + 1 + 1 + 4);
  MAGIC.copy(head, 0);
  head.writeUInt16BE(FORMAT_VERSION, 8);
  head.writeUInt8(e.kind === 'single' ? 0 : 1, 10);
  head.writeUInt32BE(e.pieceLength, 12);
  const infoLen = Buffer.alloc(4);
  infoLen.writeUInt32BE(e.bytes.length, 0);
  const count = Buffer.alloc(4);
  count.writeUInt32BE(e.files.length, 0);
  const parts: Buffer[] = [head, e.infoHash, str16(e.serviceName), str16(e.name), str16(e.webSeedSuffix), infoLen, e.bytes, count];
  for (const f of e.files) {
    const st = Buffer.alloc(16);
    st.writeBigUInt64BE(BigInt(f.size), 0);
    st.writeBigInt64BE(f.mtimeNs, 8);
    parts.push(str16(f.rel), st);
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([body, sha1(body)]);
}

/** Decodes an entry, or null for anything not fully valid. */
export function decodeInfoEntry(buf: Buffer): InfoEntry | null {
  if (buf.length < 16 + HASH_LEN * 2) return null;
  if (!buf.subarray(0, 8).equals(MAGIC)) return null;
  if (buf.readUInt16BE(8) !== FORMAT_VERSION) return null;
  const end = buf.length - HASH_LEN;
  if (!sha1(buf.subarray(0, end)).equals(buf.subarray(end))) return null;
  const kindByte = buf.readUInt8(10);
  if (kindByte > 1) return null;
  let pos = 12;
  const need = (n: number) => {
    if (pos + n > end) throw new RangeError('short entry');
  };
  try {
    need(4 + HASH_LEN);
    const pieceLength = buf.readUInt32BE(pos);
    pos += 4;
    const infoHash = Buffer.from(buf.subarray(pos, pos + HASH_LEN));
    pos += HASH_LEN;
    const readStr = () => {
      need(2);
      const n = buf.readUInt16BE(pos);
      pos += 2;
      need(n);
      const s = buf.toString('utf8', pos, pos + n);
      pos += n;
      return s;
    };
    const serviceName = readStr();
    const name = readStr();
    const webSeedSuffix = readStr();
    need(4);
    const infoLen = buf.readUInt32BE(pos);
    pos += 4;
    need(infoLen);
    const bytes = Buffer.from(buf.subarray(pos, pos + infoLen));
    pos += infoLen;
    need(4);
    const count = buf.readUInt32BE(pos);
    pos += 4;
    const files: InfoEntry['files'] = [];
    for (let i = 0; i < count; i++) {
      const rel = readStr();
      need(16);
      const size = buf.readBigUInt64BE(pos);
      const mtimeNs = buf.readBigInt64BE(pos + 8);
      pos += 16;
      if (size > BigInt(Number.MAX_SAFE_INTEGER)) return null;
      files.push({ rel, size: Number(size), mtimeNs });
    }
    if (pos !== end || pieceLength === 0 || count === 0) return null;
    const kind: ServiceKind = kindByte === 0 ? 'single' : 'multi';
    if (kind === 'single' && count !== 1) return null;
    if (!sha1(bytes).equals(infoHash)) return null;
    return { kind, pieceLength, infoHash, serviceName, name, webSeedSuffix, bytes, files };
  } catch (e) {
    if (e instanceof RangeError) return null;
    throw e;
  }
}

/**
 * Reads and validates an entry file. Null for a missing, unreadable or invalid
 * entry. `cache clean` uses this to compare the files' stamps with the tree.
 */
export function readInfoEntry(path: string): InfoEntry | null {
  const file = readCacheFileSync(path);
  return file && decodeInfoEntry(file.data);
}

export function writeInfoEntry(path: string, entry: InfoEntry): void {
  writeFileAtomic(path, encodeInfoEntry(entry));
}

/** Does the entry describe exactly these files with these stamps? */
export function entryMatches(entry: InfoEntry, files: ReadonlyArray<{ rel: string } & FileStamp>): boolean {
  if (entry.files.length !== files.length) return false;
  for (let i = 0; i < files.length; i++) {
    const a = entry.files[i]!;
    const b = files[i]!;
    if (a.rel !== b.rel || !sameStamp(a, b)) return false;
  }
  return true;
}
