// The stat-only test `hash` runs on every file of a tree before it hashes
// anything: is the piece cache entry there, and current for its source by
// the two files' stats (see isCurrentEntry)? On a warm mirror that is all a
// run does, so it is kept to two lstat calls and no promise per file.
//
// Not spread over threads: on the 2-core machine this was measured on, two
// threads (or two processes) doing lstat at once each ran at half speed,
// in C as in Node, so a second thread bought nothing but its start-up.
import { lstatSync } from 'node:fs';
import { USE_TIME_GRAIN_MS, entryUseTimeMs, isCurrentEntry } from './piece-cache.js';

/** The entry is current by its stat, and its use time recent: nothing to do. */
export const CACHED = 0;
/** There is no entry: the file is to be hashed. */
export const MISSING = 1;
/** Anything else (stale by its stat, its use time due, replaced, unreadable): the caller looks closer. */
export const LOOK = 2;
export type Verdict = typeof CACHED | typeof MISSING | typeof LOOK;

/**
 * The verdict for a source file the walk reached without a link (so lstat
 * is its stat) and the entry that would hold its hashes.
 */
export function checkEntry(entryPath: string, sourcePath: string, pieceLength: number, now: number): Verdict {
  try {
    const entry = lstatSync(entryPath, { throwIfNoEntry: false });
    if (!entry) return MISSING;
    if (!entry.isFile()) return LOOK;
    const src = lstatSync(sourcePath, { throwIfNoEntry: false });
    if (!src?.isFile() || !isCurrentEntry(entry, src, pieceLength)) return LOOK;
    // A refresh sets the entry's mtime again, from the exact (bigint) stamp the closer look takes.
    return now - entryUseTimeMs(entry) < USE_TIME_GRAIN_MS ? CACHED : LOOK;
  } catch {
    // ENOTDIR, EACCES and the like: the closer look reports them.
    return LOOK;
  }
}
