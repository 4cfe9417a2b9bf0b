// The info cache of SPEC section 5: per digest, the bencoded info dictionary
// of a service torrent, its info hash, its web-seed suffix and the stamps of
// the files it was built from. A hit costs one read and no hashing; the info
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
//
// Builds are single across processes through `<key>.lock` files, linked into
// place (link() fails if one exists). The lock only saves duplicate work; correctness never depends on it
// (two builders write identical bytes through atomic renames), which is why
// stale-lock recovery may be simple: a lock whose holder stopped refreshing it
// for LOCK_STALE_MS, or whose holder process on this host is gone, is removed.
import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { utimes } from 'node:fs/promises';
import { createHash, randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { readCacheFileSync, writeFileAtomic, TEMP_MARKER } from './atomic.js';
import { BoundedMap } from './bounded-map.js';
import { PkgError } from './errors.js';
import { sha1 } from './metainfo.js';
import { refreshUseTime, sameStamp, type FileStamp } from './piece-cache.js';
import type { ServiceInfo, ServiceKind } from './service-torrent.js';

export const MAGIC = Buffer.from('PKTINFO\n', 'latin1');
export const FORMAT_VERSION = 1;
const HASH_LEN = 20;

/** Suffix of lock files beside entries: `<cache>/info/<key>.lock`. */
export const LOCK_SUFFIX = '.lock';
/** A lock not refreshed for this long belongs to a dead or stuck builder. */
export const LOCK_STALE_MS = 30_000;
/** How often a builder refreshes its lock's mtime. */
export const LOCK_HEARTBEAT_MS = 5_000;
/** How often, per key, a use asks whether the entry's use time needs refreshing. */
const USED_CHECK_MS = 3600_000;

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

export function lockPathFor(entryPath: string): string {
  return entryPath + LOCK_SUFFIX;
}

export function isLockName(name: string): boolean {
  return name.endsWith(LOCK_SUFFIX) && isInfoKey(name.slice(0, -LOCK_SUFFIX.length));
}

// ---- encoding ---------------------------------------------------------------

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
  return Buffer.concat([body, createHash('sha1').update(body).digest()]);
}

/** Decodes an entry, or null for anything not fully valid. */
export function decodeInfoEntry(buf: Buffer): InfoEntry | null {
  if (buf.length < 16 + HASH_LEN * 2) return null;
  if (!buf.subarray(0, 8).equals(MAGIC)) return null;
  if (buf.readUInt16BE(8) !== FORMAT_VERSION) return null;
  const end = buf.length - HASH_LEN;
  if (!createHash('sha1').update(buf.subarray(0, end)).digest().equals(buf.subarray(end))) return null;
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

// ---- build locks --------------------------------------------------------------

interface LockBody {
  pid: number;
  host: string;
  token: string;
}

/** True when a lock file's holder is gone: not refreshed lately, or its process on this host has exited. */
export function isStaleLock(path: string, now = Date.now()): boolean {
  const st = statSync(path, { throwIfNoEntry: false });
  if (!st) return false; // gone already: not stale, just free
  if (now - st.mtimeMs > LOCK_STALE_MS) return true;
  let body: Partial<LockBody>;
  try {
    body = JSON.parse(readFileSync(path, 'utf8')) as LockBody;
  } catch {
    return false; // unreadable but recent: let age decide
  }
  return body.host === hostname() && typeof body.pid === 'number' && !processAlive(body.pid);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A held build lock; `release()` removes it only while it is still ours. */
export interface BuildLock {
  release(): void;
}

/**
 * Tries to take the build lock of an entry. Returns null when another live
 * builder holds it. A stale lock is moved aside (rename, so two recoverers
 * cannot both delete a fresh lock taken in between by a third) and retried.
 * Synchronous, like writeFileAtomic: a handful of calls on small files in
 * the cache dir, on the path of every cold build.
 */
export function tryLock(entryPath: string): BuildLock | null {
  const path = lockPathFor(entryPath);
  const token = randomBytes(8).toString('hex');
  const body = JSON.stringify({ pid: process.pid, host: hostname(), token } satisfies LockBody);
  // The lock appears with its content or not at all: written aside, then
  // linked into place (link fails with EEXIST atomically), so nobody ever
  // reads an empty lock and mistakes it for garbage.
  const tmp = `${path}${TEMP_MARKER}${process.pid}-${token}`;
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(tmp, body, { mode: 0o644 });
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        linkSync(tmp, path);
        return heldLock(path, token);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      if (!isStaleLock(path)) return null;
      // Moved aside before removal, so that of two recoverers only one removes it.
      const aside = `${path}${TEMP_MARKER}stale-${process.pid}-${token}`;
      try {
        renameSync(path, aside);
        unlinkSync(aside);
      } catch {
        return null;
      }
    }
    return null;
  } finally {
    rmSync(tmp, { force: true });
  }
}

function heldLock(path: string, token: string): BuildLock {
  // The heartbeat keeps a long build (a big ISO hashed cold) from looking stale.
  const timer = setInterval(() => {
    const t = new Date();
    utimes(path, t, t).catch(() => {});
  }, LOCK_HEARTBEAT_MS);
  timer.unref();
  return {
    release() {
      clearInterval(timer);
      try {
        const current = JSON.parse(readFileSync(path, 'utf8')) as LockBody;
        if (current.token !== token) return;
        unlinkSync(path);
      } catch {
        // Already gone (recovered as stale by someone else): nothing to release.
      }
    },
  };
}

// ---- the cache ------------------------------------------------------------------

export interface InfoCacheOptions {
  /** Longest a request waits for another process's build before giving up (503). */
  waitMs: number;
  /** Most entries kept decoded in memory. */
  memoryEntries?: number;
}

/**
 * Entries by key, with an in-memory copy of recently used ones so a hot digest
 * costs no read at all, only the stat revalidation the caller does.
 */
export class InfoCache {
  private memory: BoundedMap<string, InfoEntry>;
  private touched = new Map<string, number>();
  private inflight = new Map<string, Promise<InfoEntry>>();

  constructor(
    readonly cacheDir: string,
    private readonly opts: InfoCacheOptions,
  ) {
    this.memory = new BoundedMap(opts.memoryEntries ?? 4096);
  }

  path(key: string): string {
    return infoEntryPath(this.cacheDir, key);
  }

  /** The entry for a key from memory or disk, not yet checked against the files. */
  load(key: string): InfoEntry | null {
    const mem = this.memory.get(key);
    if (mem) return mem;
    return this.reload(key);
  }

  /** Reads the entry from disk, bypassing memory (another process may have rebuilt it). */
  reload(key: string): InfoEntry | null {
    const entry = readInfoEntry(this.path(key));
    if (entry) this.remember(key, entry);
    else this.memory.delete(key);
    return entry;
  }

  /**
   * Records a use of the entry: refreshes its mtime at most once per grain.
   * Asking refreshUseTime (a stat) at most hourly per key keeps that off the
   * path of every cached GET.
   */
  used(key: string, now = Date.now()): void {
    const last = this.touched.get(key) ?? 0;
    if (now - last < USED_CHECK_MS) return;
    this.touched.set(key, now);
    void refreshUseTime(this.path(key), undefined, now);
  }

  private remember(key: string, entry: InfoEntry): void {
    this.memory.set(key, entry);
  }

  /** Builds in progress in this process. */
  get building(): number {
    return this.inflight.size;
  }

  isBuilding(key: string): boolean {
    return this.inflight.has(key);
  }

  /**
   * The entry for `key` for which `valid` holds, building it at most once:
   * requests in this process share one promise, processes share the lock file.
   * `build` runs only while holding the lock. Waiting for another process is
   * bounded by `waitMs` (then 'busy').
   */
  obtain(key: string, valid: (e: InfoEntry) => boolean, build: () => Promise<InfoEntry>): Promise<InfoEntry> {
    let p = this.inflight.get(key);
    if (!p) {
      p = this.obtainShared(key, valid, build).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private async obtainShared(key: string, valid: (e: InfoEntry) => boolean, build: () => Promise<InfoEntry>): Promise<InfoEntry> {
    const path = this.path(key);
    const deadline = Date.now() + this.opts.waitMs;
    let delay = 10;
    for (;;) {
      const found = this.reload(key);
      if (found && valid(found)) return found;
      const lock = tryLock(path);
      if (lock) {
        try {
          // Someone may have finished between our read and our lock.
          const again = this.reload(key);
          if (again && valid(again)) return again;
          const entry = await build();
          writeInfoEntry(path, entry);
          this.remember(key, entry);
          return entry;
        } finally {
          lock.release();
        }
      }
      if (Date.now() >= deadline) throw new PkgError('busy', 'another process is still building this torrent');
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 200);
    }
  }
}
