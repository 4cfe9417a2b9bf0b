// Cross-process build locks: `<entry>.lock` files, linked into place (link()
// fails if one exists), so that many processes sharing a cache dir build an
// entry once. The lock only saves duplicate work; correctness never depends
// on it (two builders write identical bytes through atomic renames), which is
// why stale-lock recovery may be simple: a lock whose holder stopped
// refreshing it for LOCK_STALE_MS, or whose holder process on this host is
// gone, is removed.
import { linkSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { utimes } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { mkdirsSync, TEMP_MARKER } from './atomic.js';

/** Suffix of lock files beside entries: `<cache>/info/<key>.lock`. */
export const LOCK_SUFFIX = '.lock';
/** A lock not refreshed for this long belongs to a dead or stuck builder. */
export const LOCK_STALE_MS = 30_000;
/** How often a builder refreshes its lock's mtime. */
export const LOCK_HEARTBEAT_MS = 5_000;

export function lockPathFor(entryPath: string): string {
  return entryPath + LOCK_SUFFIX;
}

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
  try {
    mkdirsSync(dirname(path));
    // Inside the try: on a full file system the file is created, then the write fails.
    writeFileSync(tmp, body, { mode: 0o644 });
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
    try {
      rmSync(tmp, { force: true });
    } catch {
      // The file system went read-only under us; `cache clean` removes leftovers.
    }
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
