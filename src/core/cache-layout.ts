// What the files under a cache dir are (pkgtorrent-service(8), CACHE LAYOUT), and a walk over them
// that never leaves the cache dir. Shared by `cache clean` and `cache stats`
// so both agree on what an entry is; anything we do not recognise is left
// alone, because a later version (or an operator) may have put it there.
import { lstat, readdir } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { isTempName } from './atomic.js';
import { INFO_DIR, isInfoKey, isLockName } from './info-entry.js';
import { PIECES_DIR } from './piece-cache.js';
import { Limiter } from './limit.js';

// The top-level directories of a cache dir (PIECES_DIR, INFO_DIR) are never removed.

export type CacheFileKind =
  | 'piece' // pieces/<root-relative path>/<piece length>
  | 'info' // info/<digest> or info/<digest>_s
  | 'temp' // a temporary file of a write (atomic.ts): finished or interrupted
  | 'lock' // a build lock of the info cache
  | 'other'; // not ours, or not any more: never touched

const PIECE_NAME = /^[1-9]\d*$/;

/**
 * Classifies a regular file by its path relative to the cache dir
 * ('/'-separated segments). Temp files are recognised anywhere in the two
 * cache trees, since a write creates them next to its target.
 */
export function classify(segments: readonly string[]): CacheFileKind {
  const [top, ...rest] = segments;
  const name = segments[segments.length - 1] ?? '';
  if (top !== PIECES_DIR && top !== INFO_DIR) return 'other';
  if (isTempName(name)) return 'temp';
  if (top === PIECES_DIR) return rest.length >= 2 && PIECE_NAME.test(name) ? 'piece' : 'other';
  if (rest.length !== 1) return 'other';
  if (isInfoKey(name)) return 'info';
  if (isLockName(name)) return 'lock';
  return 'other';
}

export interface WalkedFile {
  abs: string;
  /** Path segments relative to the cache dir. */
  segments: string[];
  kind: CacheFileKind;
  /** lstat of the file when it was listed. */
  stat: Stats;
}

export interface WalkVisitor {
  /** Resolves true when the file is (or, in a dry run, would be) gone afterwards. */
  file(f: WalkedFile): Promise<boolean>;
  /**
   * Called after a directory's children with whether all of them are gone.
   * Resolves true when the directory itself is gone afterwards. Not called
   * for the cache dir and its top-level directories.
   */
  dir?(abs: string, segments: string[], childrenGone: boolean): Promise<boolean>;
  /** A symlink, socket or the like: skipped, never followed. */
  skipped?(abs: string, segments: string[]): void;
  /** A directory or file that could not be read; the walk goes on without it. */
  error?(segments: string[], err: NodeJS.ErrnoException): void;
}

/**
 * Walks `pieces/` and `info/` under the cache dir. Directories are read with
 * file types from the directory itself (lstat semantics), so a symlink is
 * never followed out of the cache: it is reported to `skipped` and left
 * alone. A directory that disappears while we walk (another clean, an
 * operator) is simply gone. File work runs at most `limit` at a time.
 */
export async function walkCache(cacheDir: string, visitor: WalkVisitor, limit = 16): Promise<void> {
  const gate = new Limiter(limit);

  async function walkDir(abs: string, segments: string[]): Promise<boolean> {
    let names;
    try {
      names = await gate.run(() => readdir(abs, { withFileTypes: true }));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return true;
      if (!visitor.error) throw e;
      visitor.error(segments, e as NodeJS.ErrnoException);
      return false;
    }
    const gone = await Promise.all(
      names.map(async (d): Promise<boolean> => {
        const childAbs = join(abs, d.name);
        const childSegs = [...segments, d.name];
        if (d.isDirectory()) {
          const allGone = await walkDir(childAbs, childSegs);
          return visitor.dir ? visitor.dir(childAbs, childSegs, allGone) : false;
        }
        if (!d.isFile()) {
          visitor.skipped?.(childAbs, childSegs);
          return false;
        }
        let st: Stats;
        try {
          st = await gate.run(() => lstat(childAbs));
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true;
          if (!visitor.error) throw e;
          visitor.error(childSegs, e as NodeJS.ErrnoException);
          return false;
        }
        // Replaced by something else since readdir: leave it to the next run.
        if (!st.isFile()) return false;
        return gate.run(() => visitor.file({ abs: childAbs, segments: childSegs, kind: classify(childSegs), stat: st }));
      }),
    );
    return gone.every(Boolean);
  }

  for (const top of [PIECES_DIR, INFO_DIR]) {
    const abs = join(cacheDir, top);
    let st: Stats;
    try {
      st = await lstat(abs);
    } catch {
      continue;
    }
    // A top-level symlink could point anywhere; the cache code never makes one.
    if (!st.isDirectory()) {
      visitor.skipped?.(abs, [top]);
      continue;
    }
    await walkDir(abs, [top]);
  }
}
