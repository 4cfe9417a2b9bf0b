// The info cache: entries by key (format in info-entry.ts) with a decoded
// copy of recently used ones in memory, and builds shared by concurrent
// requests in this process (one promise per key) and across processes (a
// build lock per key, build-lock.ts). The memory also owns each entry's
// freshness: when its files were last found unchanged, and so whether a GET
// may be answered from it without a new stat check.
import { BoundedMap } from './bounded-map.js';
import { BuildLocks, LOCK_SUFFIX } from './build-lock.js';
import type { CacheWrites } from './cache-writes.js';
import { PkgError } from './errors.js';
import { infoEntryPath, readInfoEntry, writeInfoEntry, type InfoEntry } from './info-entry.js';
import { refreshUseTime } from './piece-cache.js';
import { SharedRuns } from './shared-runs.js';

/** How often, per key, a use asks whether the entry's use time needs refreshing. */
const USED_CHECK_MS = 3600_000;

export interface InfoCacheOptions {
  /** Longest a request waits for another process's build before giving up (503). */
  waitMs: number;
  /** Bytes of decoded entries and their ready torrents kept in memory. */
  memoryBytes?: number;
  /**
   * How long a check of an entry's files holds, in ms; 0 (the default)
   * means a GET is answered only from a check made after it arrived.
   */
  revalidateMs?: number;
  /** The clock of checks, in ms (default performance.now); a test moves it by hand. */
  now?: () => number;
  /** Most keys whose use time is remembered as recently asked about. */
  touchedKeys?: number;
  /** Every write (locks, entries) goes through this: a cache that cannot be written never fails a build. */
  writes: CacheWrites;
  /** Cross-process build locks; default: judged by this process's clock and /proc. */
  locks?: BuildLocks;
}

/**
 * Decoded entries and their ready torrents kept in memory, in bytes: enough
 * for tens of thousands of digests of a few packages (about 2 KiB each with
 * the torrent), so GETs spread over a large fleet's permutations are
 * answered without reading the disk or encoding.
 */
export const INFO_MEMORY_BYTES = 128 * 1024 * 1024;
/** Keys whose use time was asked about lately (a forgotten key costs one more stat). */
const TOUCHED_KEYS = 65_536;

/** A torrent made of an entry for one base URL, further web seeds and tracker list, ready to send. */
export interface ReadyTorrent {
  baseUrl: string;
  /** The further web seeds after the base URL's (the web-seeds setting); absent: none. */
  webSeeds?: readonly string[];
  trackers: readonly string[];
  bytes: Buffer;
  infoHashHex: string;
  /** The Content-Disposition value, made once. */
  disposition: string;
}

/**
 * What memory holds for a key: the entry, when its files were last found
 * unchanged (on the cache's clock; -Infinity when not since it was read),
 * and the last torrent made of it. Replaced whole when the entry is, so
 * nothing here can outlive the entry it was made of.
 */
interface Remembered {
  entry: InfoEntry;
  checkedAt: number;
  ready: ReadyTorrent | null;
}

/** About what a decoded entry and its ready torrent hold in memory. */
function rememberedBytes(r: Remembered): number {
  const e = r.entry;
  return 256 + e.bytes.length + e.files.reduce((n, f) => n + 64 + f.rel.length, 0) + (r.ready ? 128 + r.ready.bytes.length : 0);
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a === b || (a.length === b.length && a.every((x, i) => x === b[i]));
}

/**
 * Entries by key, with an in-memory copy of recently used ones so a hot digest
 * costs no read at all, only the stat revalidation the caller does.
 */
export class InfoCache {
  private memory: BoundedMap<string, Remembered>;
  /** When each key's use time was last asked about; bounded like memory (a forgotten key only costs one more stat). */
  private touched: BoundedMap<string, number>;
  private inflight = new SharedRuns<string, InfoEntry>();
  private locks: BuildLocks;
  /** How long a check of an entry's files holds, in ms (0: only for requests that arrived before it). */
  readonly revalidateMs: number;
  /** The clock of checks and arrivals, in ms. */
  readonly now: () => number;

  constructor(
    readonly cacheDir: string,
    private readonly opts: InfoCacheOptions,
  ) {
    this.memory = new BoundedMap(opts.memoryBytes ?? INFO_MEMORY_BYTES, rememberedBytes);
    this.revalidateMs = opts.revalidateMs ?? 0;
    this.now = opts.now ?? (() => performance.now());
    this.touched = new BoundedMap(opts.touchedKeys ?? TOUCHED_KEYS);
    this.locks = opts.locks ?? new BuildLocks();
  }

  path(key: string): string {
    return infoEntryPath(this.cacheDir, key);
  }

  /** The entry for a key from memory or disk, not yet checked against the files. */
  load(key: string): InfoEntry | null {
    const mem = this.memory.get(key);
    if (mem) return mem.entry;
    return this.reload(key);
  }

  /**
   * The entry in memory if a check of its files holds for a request that
   * arrived at `arrivedAt`: one made after it arrived, or within the
   * revalidation window. Null means: check the files (then `checked`).
   */
  fresh(key: string, arrivedAt: number): InfoEntry | null {
    const mem = this.memory.get(key);
    if (!mem) return null;
    const at = mem.checkedAt;
    return at >= arrivedAt || this.now() - at < this.revalidateMs ? mem.entry : null;
  }

  /**
   * Records that `entry`'s files were found unchanged at `at` (taken before
   * the first stat): it becomes the key's entry in memory, fresh from then
   * on. Its ready torrent is kept when the entry is the same one as before
   * (same info hash: the same info bytes, so the same torrent).
   */
  checked(key: string, entry: InfoEntry, at: number): void {
    const prev = this.memory.get(key);
    // The same entry checked again (every window, for each digest in use):
    // only the time changes, so its weight and place stay as they are.
    if (prev?.entry === entry) prev.checkedAt = at;
    else this.memory.set(key, { entry, checkedAt: at, ready: prev && prev.entry.infoHash.equals(entry.infoHash) ? prev.ready : null });
  }

  /** Forgets the key's entry (its files changed, or it is gone). */
  forget(key: string): void {
    this.memory.delete(key);
  }

  /** The ready torrent of the key's entry in memory for this base URL, tracker list and further web seeds, if one was made. */
  ready(key: string, entry: InfoEntry, baseUrl: string, trackers: readonly string[], webSeeds: readonly string[] = []): ReadyTorrent | null {
    const r = this.memory.get(key);
    if (!r?.ready || !r.entry.infoHash.equals(entry.infoHash)) return null;
    return r.ready.baseUrl === baseUrl && sameList(r.ready.trackers, trackers) && sameList(r.ready.webSeeds ?? [], webSeeds) ? r.ready : null;
  }

  /** Keeps a torrent made of the key's entry (when that entry is still the one in memory). */
  keepReady(key: string, entry: InfoEntry, ready: ReadyTorrent): void {
    const r = this.memory.get(key);
    if (!r || !r.entry.infoHash.equals(entry.infoHash)) return;
    // Set again, so the bound counts the torrent's bytes.
    this.memory.set(key, { ...r, ready });
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
   * path of every cached GET. Returns the refresh when one was asked for
   * (callers need not wait for it; tests do).
   */
  used(key: string, now = Date.now()): Promise<void> | null {
    const last = this.touched.get(key) ?? 0;
    if (now - last < USED_CHECK_MS) return null;
    this.touched.set(key, now);
    return refreshUseTime(this.path(key), undefined, now);
  }

  /** An entry just read or built: in memory, not yet checked against the files. */
  private remember(key: string, entry: InfoEntry): void {
    this.memory.set(key, { entry, checkedAt: -Infinity, ready: null });
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
   * `build` runs only while holding the lock, or without one when the cache
   * cannot be written (then the entry is not stored either). Waiting for
   * another process is bounded by `waitMs` (then 'busy').
   */
  obtain(key: string, valid: (e: InfoEntry) => boolean, build: () => Promise<InfoEntry>): Promise<InfoEntry> {
    return this.inflight.run(key, () => this.obtainShared(key, valid, build));
  }

  private async obtainShared(key: string, valid: (e: InfoEntry) => boolean, build: () => Promise<InfoEntry>): Promise<InfoEntry> {
    const path = this.path(key);
    const deadline = Date.now() + this.opts.waitMs;
    let delay = 10;
    for (;;) {
      const found = this.reload(key);
      if (found && valid(found)) return found;
      // null: another builder holds it. undefined: no lock can be had (the
      // cache cannot be written), so build here, sharing only in-process.
      const lock = this.opts.writes.attempt(`${key}${LOCK_SUFFIX}`, () => this.locks.tryLock(path), false);
      if (lock !== null) {
        try {
          // Someone may have finished between our read and our lock.
          const again = lock && this.reload(key);
          if (again && valid(again)) return again;
          const entry = await build();
          this.opts.writes.attempt(key, () => writeInfoEntry(path, entry));
          this.remember(key, entry);
          return entry;
        } finally {
          lock?.release();
        }
      }
      if (Date.now() >= deadline) throw new PkgError('busy', 'another process is still building this torrent');
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 200);
    }
  }
}
