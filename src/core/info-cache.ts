// The info cache: entries by key (format in info-entry.ts) with a decoded
// copy of recently used ones in memory, and builds shared by concurrent
// requests in this process (one promise per key) and across processes (a
// build lock per key, build-lock.ts).
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
  /** Most entries kept decoded in memory. */
  memoryBytes?: number;
  /** Most keys whose use time is remembered as recently asked about. */
  touchedKeys?: number;
  /** Every write (locks, entries) goes through this: a cache that cannot be written never fails a build. */
  writes: CacheWrites;
  /** Cross-process build locks; default: judged by this process's clock and /proc. */
  locks?: BuildLocks;
}

/**
 * Decoded entries kept in memory, in bytes: enough for tens of thousands of
 * digests of a few packages (about 1 KiB each), so GETs spread over a large
 * fleet's permutations are answered without reading the disk.
 */
export const INFO_MEMORY_BYTES = 64 * 1024 * 1024;
/** Keys whose use time was asked about lately (a forgotten key costs one more stat). */
const TOUCHED_KEYS = 65_536;

/** About what a decoded entry holds in memory. */
function entryBytes(e: InfoEntry): number {
  return 256 + e.bytes.length + e.files.reduce((n, f) => n + 64 + f.rel.length, 0);
}

/**
 * Entries by key, with an in-memory copy of recently used ones so a hot digest
 * costs no read at all, only the stat revalidation the caller does.
 */
export class InfoCache {
  private memory: BoundedMap<string, InfoEntry>;
  /** When each key's use time was last asked about; bounded like memory (a forgotten key only costs one more stat). */
  private touched: BoundedMap<string, number>;
  private inflight = new SharedRuns<string, InfoEntry>();
  private locks: BuildLocks;

  constructor(
    readonly cacheDir: string,
    private readonly opts: InfoCacheOptions,
  ) {
    this.memory = new BoundedMap(opts.memoryBytes ?? INFO_MEMORY_BYTES, entryBytes);
    this.touched = new BoundedMap(opts.touchedKeys ?? TOUCHED_KEYS);
    this.locks = opts.locks ?? new BuildLocks();
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
   * path of every cached GET. Returns the refresh when one was asked for
   * (callers need not wait for it; tests do).
   */
  used(key: string, now = Date.now()): Promise<void> | null {
    const last = this.touched.get(key) ?? 0;
    if (now - last < USED_CHECK_MS) return null;
    this.touched.set(key, now);
    return refreshUseTime(this.path(key), undefined, now);
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
