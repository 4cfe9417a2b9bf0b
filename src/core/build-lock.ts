// Cross-process build locks: `<entry>.lock` files, linked into place (link()
// fails if one exists), so that many processes sharing a cache dir build an
// entry once. The lock only saves duplicate work; correctness never depends
// on it (two builders write identical bytes through atomic renames), which is
// why stale-lock recovery may be simple and may err towards taking a lock
// over: the worst case is one build done twice.
//
// A lock names its holder: host, boot id, pid and the pid's start time. A
// pid alone is not an identity: a container restarted after a crash runs
// its new serve as PID 1 again, so "PID 1 is alive" said nothing about the
// old holder and the next request waited for the lock to age out. On the
// holder's own host and boot, the lock is stale when that pid is gone or now
// belongs to a process started at another time; a lock from an earlier boot
// is stale at once. A holder on another host cannot be asked, so its lock
// is stale when its heartbeat stops: when this process has seen the same
// lock unrefreshed for FOREIGN_STALE_MS by its own clock (so the hosts'
// clocks need not agree). Any lock not refreshed for LOCK_STALE_MS is stale.
import { linkSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { utimes } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { mkdirsSync, readCacheFileSync, TEMP_MARKER } from './atomic.js';
import { BoundedMap } from './bounded-map.js';

/** Suffix of lock files beside entries: `<cache>/info/<key>.lock`. */
export const LOCK_SUFFIX = '.lock';
/** A lock not refreshed for this long belongs to a dead or stuck builder, wherever it runs. */
export const LOCK_STALE_MS = 30_000;
/** How often a builder refreshes its lock's mtime. */
export const LOCK_HEARTBEAT_MS = 5_000;
/** A lock from another host seen unrefreshed for this long (three missed heartbeats) is stale. */
export const FOREIGN_STALE_MS = 3 * LOCK_HEARTBEAT_MS;

export function lockPathFor(entryPath: string): string {
  return entryPath + LOCK_SUFFIX;
}

/** What a lock file holds (JSON). `boot` and `start` are absent where /proc is (and in older locks). */
interface LockBody {
  pid: number;
  host: string;
  token: string;
  boot?: string;
  start?: string;
}

/** Where a lock's holder is judged from: the clock and the process table, injectable for tests. */
export interface LockEnv {
  now(): number;
  host: string;
  pid: number;
  /** This boot's id (/proc/sys/kernel/random/boot_id), or null where there is none. */
  bootId: string | null;
  /** When a process started, in clock ticks since boot (field 22 of /proc/<pid>/stat), or null if unknown or gone. */
  startTime(pid: number): string | null;
  alive(pid: number): boolean;
}

function readProc(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** Field 22 of /proc/<pid>/stat. The command name (field 2) may hold spaces and parentheses, so count from the last ')'. */
export function procStartTime(stat: string): string | null {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const start = fields[22 - 3];
  return start && /^\d+$/.test(start) ? start : null;
}

export const systemLockEnv: LockEnv = {
  now: Date.now,
  host: hostname(),
  pid: process.pid,
  bootId: readProc('/proc/sys/kernel/random/boot_id')?.trim() || null,
  startTime(pid) {
    const stat = readProc(`/proc/${pid}/stat`);
    return stat === null ? null : procStartTime(stat);
  },
  alive(pid) {
    try {
      process.kill(pid, 0);
      return true;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'EPERM';
    }
  },
};

/** Tokens of the locks this process holds: a lock naming this very process with another token was left behind. */
const held = new Set<string>();

/** A held build lock; `release()` removes it only while it is still ours. */
export interface BuildLock {
  release(): void;
}

/** Build locks as one process sees them; keeps what it has seen of foreign locks. */
export class BuildLocks {
  /** Per lock path: the version of a foreign lock last seen, and when (our clock). */
  private seen = new BoundedMap<string, { mtimeMs: number; token: string; at: number }>(1024);
  private ownStart: string | null | undefined;

  constructor(private readonly env: LockEnv = systemLockEnv) {}

  private me(): Required<Pick<LockBody, 'pid' | 'host'>> & Pick<LockBody, 'boot' | 'start'> {
    this.ownStart ??= this.env.startTime(this.env.pid);
    return { pid: this.env.pid, host: this.env.host, boot: this.env.bootId ?? undefined, start: this.ownStart ?? undefined };
  }

  /** True when a lock file's holder is gone or is not who the lock names (see the top of this file). */
  isStale(path: string): boolean {
    const file = readCacheFileSync(path); // open, then fstat: fresh attributes on NFS too
    if (!file) return false; // gone already: not stale, just free
    const now = this.env.now();
    if (now - file.mtimeMs > LOCK_STALE_MS) return true;
    let body: Partial<LockBody>;
    try {
      body = JSON.parse(file.data.toString('utf8')) as LockBody;
    } catch {
      return false; // unreadable but recent: let age decide
    }
    if (typeof body.pid !== 'number' || typeof body.host !== 'string') return false;
    const me = this.me();
    if (body.host !== me.host) return this.heartbeatStopped(path, file.mtimeMs, String(body.token), now);
    if (body.boot && me.boot && body.boot !== me.boot) return true; // from before a reboot
    if (body.pid === me.pid && body.start === me.start) return !held.has(String(body.token));
    if (!this.env.alive(body.pid)) return true;
    // Alive, but is it the process that took the lock? (Locks without a start time cannot tell.)
    const start = body.start === undefined ? null : this.env.startTime(body.pid);
    return start !== null && start !== body.start;
  }

  private heartbeatStopped(path: string, mtimeMs: number, token: string, now: number): boolean {
    const last = this.seen.get(path);
    if (!last || last.mtimeMs !== mtimeMs || last.token !== token) {
      this.seen.set(path, { mtimeMs, token, at: now });
      return false;
    }
    return now - last.at >= FOREIGN_STALE_MS;
  }

  /**
   * Tries to take the build lock of an entry. Returns null when another live
   * builder holds it. A stale lock is moved aside (rename, so two recoverers
   * cannot both delete a fresh lock taken in between by a third) and retried.
   * Synchronous, like writeFileAtomic: a handful of calls on small files in
   * the cache dir, on the path of every cold build. Throws what the file
   * system throws (a read-only or full cache: the caller builds unlocked).
   */
  tryLock(entryPath: string): BuildLock | null {
    const path = lockPathFor(entryPath);
    const token = randomBytes(8).toString('hex');
    const body = JSON.stringify({ ...this.me(), token } satisfies LockBody);
    // The lock appears with its content or not at all: written aside, then
    // linked into place (link fails with EEXIST atomically), so nobody ever
    // reads an empty lock and mistakes it for garbage.
    const tmp = `${path}${TEMP_MARKER}${this.env.pid}-${token}`;
    try {
      mkdirsSync(dirname(path));
      // Inside the try: on a full file system the file is created, then the write fails.
      writeFileSync(tmp, body, { mode: 0o644 });
      for (let attempt = 0; attempt < 2; attempt++) {
        try {
          linkSync(tmp, path);
          this.seen.delete(path);
          return heldLock(path, token);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        }
        if (!this.isStale(path)) return null;
        // Moved aside before removal, so that of two recoverers only one removes it.
        const aside = `${path}${TEMP_MARKER}stale-${this.env.pid}-${token}`;
        try {
          renameSync(path, aside);
          unlinkSync(aside);
        } catch {
          return null;
        }
      }
      return null;
    } finally {
      try {
        rmSync(tmp, { force: true });
      } catch {
        // The file system went read-only under us; `cache clean` removes leftovers.
      }
    }
  }
}

/** One look at a lock, as this process sees it at `now`: for `cache clean`, which judges each file once. */
export function isStaleLock(path: string, now = Date.now()): boolean {
  return new BuildLocks({ ...systemLockEnv, now: () => now }).isStale(path);
}

function heldLock(path: string, token: string): BuildLock {
  held.add(token);
  // The heartbeat keeps a long build (a big ISO hashed cold) from looking stale.
  const timer = setInterval(() => {
    const t = new Date();
    utimes(path, t, t).catch(() => {});
  }, LOCK_HEARTBEAT_MS);
  timer.unref();
  return {
    release() {
      clearInterval(timer);
      held.delete(token);
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
