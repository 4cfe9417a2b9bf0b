// `cache clean`: removes cache entries nobody needs any more, safely beside a
// running `serve` and `hash` on the same cache dir.
//
// Why this is safe while others read and write:
// - Entries are only ever unlinked whole. A reader that already opened one
//   keeps reading it; a reader that opens it afterwards sees a miss and
//   rebuilds. Writers replace entries by rename, never in place.
// - Before unlinking we lstat again and skip the file if it is not the one we
//   judged (another inode, mtime or size, or for a piece entry atime): a
//   writer renamed a fresh entry over it, or a reader used it, while we were
//   deciding. Piece entries are read without moving their atime (their use
//   time, see piece-cache.ts), so our own read does not count as a use.
// - Temp files and locks are removed only when older than `leftoverAgeMs`, far
//   longer than any write takes, so a write in progress keeps its temp file.
// - Empty directories are removed with rmdir, which fails (ENOTEMPTY) when a
//   writer put something in meanwhile; a writer that made the directory just
//   before our rmdir re-creates it (writeFileAtomic retries on ENOENT).
// - Nothing outside the cache dir is touched: the walk never follows symlinks.
import { lstat, rmdir, unlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { PkgError, errnoText } from './errors.js';
import { walkCache, type CacheFileKind, type WalkedFile } from './cache-layout.js';
import { isStaleLock } from './build-lock.js';
import { readInfoEntry } from './info-entry.js';
import { decodeEntry, entryUseTimeMs, pieceEntrySource, sameStamp } from './piece-cache.js';
import { readQuietlySync } from './atomic.js';
import type { MirrorRoot } from './root.js';

export type RemovalReason =
  | 'unused' // not used for longer than --older-than
  | 'source-gone' // the file it was made from no longer exists under the root
  | 'source-changed' // the file's size or mtime differs from the entry's
  | 'corrupt' // fails validation: readers already treat it as missing
  | 'leftover' // temp file or lock of an interrupted write
  | 'empty-dir';

export const REMOVAL_REASONS: readonly RemovalReason[] = ['unused', 'source-gone', 'source-changed', 'corrupt', 'leftover', 'empty-dir'];

export interface Removal {
  /** Relative to the cache dir, '/'-separated. */
  path: string;
  kind: CacheFileKind | 'dir';
  reason: RemovalReason;
  bytes: number;
  /** For source-gone / source-changed: which source file. */
  source?: string;
}

export interface CleanOptions {
  cacheDir: string;
  /** Entries whose use time is older than this are removed. */
  olderThanMs: number;
  /** Temp files and locks older than this are leftovers of interrupted writes. */
  leftoverAgeMs: number;
  /** When set, entries are checked against their source files under it. */
  root: MirrorRoot | null;
  dryRun: boolean;
  now?: number;
}

export interface CleanResult {
  cacheDir: string;
  dryRun: boolean;
  /** Whether entries were checked against source files (a root was given). */
  checkedSources: boolean;
  removed: Removal[];
  /** Piece and info entries removed. */
  entries: number;
  leftovers: number;
  dirs: number;
  bytes: number;
  /** Piece and info entries left in place. */
  kept: number;
  /** Symlinks and other non-regular files left alone. */
  skipped: string[];
  errors: Array<{ path: string; message: string }>;
}

export async function cleanCache(o: CleanOptions): Promise<CleanResult> {
  const now = o.now ?? Date.now();
  const result: CleanResult = {
    cacheDir: o.cacheDir,
    dryRun: o.dryRun,
    checkedSources: o.root !== null,
    removed: [],
    entries: 0,
    leftovers: 0,
    dirs: 0,
    bytes: 0,
    kept: 0,
    skipped: [],
    errors: [],
  };

  const record = (r: Removal) => {
    result.removed.push(r);
    result.bytes += r.bytes;
    if (r.kind === 'piece' || r.kind === 'info') result.entries++;
    else if (r.kind === 'dir') result.dirs++;
    else result.leftovers++;
  };

  const visitFile = async (f: WalkedFile): Promise<boolean> => {
    const rel = f.segments.join('/');
    let verdict: Verdict | null;
    try {
      verdict = await judge(f, o, now);
    } catch (e) {
      result.errors.push({ path: rel, message: errnoMessage('cannot read', e) });
      return false;
    }
    if (!verdict) {
      if (f.kind === 'piece' || f.kind === 'info') result.kept++;
      return false;
    }
    const removal: Removal = { path: rel, kind: f.kind, reason: verdict.reason, bytes: f.stat.size, ...(verdict.source ? { source: verdict.source } : {}) };
    if (o.dryRun) {
      record(removal);
      return true;
    }
    const outcome = await removeIfUnchanged(f.abs, verdict.judged ?? f.stat, f.kind === 'piece').catch((e: unknown) => {
      result.errors.push({ path: rel, message: errnoMessage('cannot remove', e) });
      return 'kept' as const;
    });
    if (outcome === 'removed') record(removal);
    else if (outcome === 'kept' && (f.kind === 'piece' || f.kind === 'info')) result.kept++;
    return outcome !== 'kept';
  };

  const visitDir = async (abs: string, segments: string[], childrenGone: boolean): Promise<boolean> => {
    if (!childrenGone) return false;
    const removal: Removal = { path: segments.join('/'), kind: 'dir', reason: 'empty-dir', bytes: 0 };
    if (o.dryRun) {
      record(removal);
      return true;
    }
    try {
      await rmdir(abs);
      record(removal);
      return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // Gone already (another clean), or a writer has just put a file in it.
      if (code === 'ENOENT') return true;
      if (code === 'ENOTEMPTY' || code === 'EEXIST') return false;
      result.errors.push({ path: removal.path, message: errnoMessage('cannot remove directory', e) });
      return false;
    }
  };

  await walkCache(o.cacheDir, {
    file: visitFile,
    dir: visitDir,
    skipped: (abs, segments) => result.skipped.push(segments.join('/')),
    error: (segments, e) => result.errors.push({ path: segments.join('/'), message: errnoMessage('cannot read', e) }),
  });
  const order = (a: { path: string }, b: { path: string }) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  result.removed.sort(order);
  result.errors.sort(order);
  result.skipped.sort();
  return result;
}

interface Verdict {
  reason: RemovalReason;
  source?: string;
  /** The file's stat after we read it, when we did: what "unchanged" is measured against. */
  judged?: Stats;
}

/** Why a file should go, or null to keep it. */
async function judge(f: WalkedFile, o: CleanOptions, now: number): Promise<Verdict | null> {
  const age = now - f.stat.mtimeMs;
  switch (f.kind) {
    case 'temp':
      return age > o.leftoverAgeMs ? { reason: 'leftover' } : null;
    case 'lock':
      // A live builder refreshes its lock every few seconds, so an old one is
      // dead; asking build-lock too keeps one rule for what stale means.
      return age > o.leftoverAgeMs && isStaleLock(f.abs, now) ? { reason: 'leftover' } : null;
    case 'piece':
      return judgePiece(f, o, now);
    case 'info':
      return judgeInfo(f, o, age);
    default:
      return null;
  }
}

async function judgePiece(f: WalkedFile, o: CleanOptions, now: number): Promise<Verdict | null> {
  const read = readQuietlySync(f.abs);
  if (!read) return null;
  const entry = decodeEntry(read.data);
  const { rel, pieceLength } = pieceEntrySource(f.segments);
  const judged = read.stat;
  if (!entry || entry.pieceLength !== pieceLength) return { reason: 'corrupt', judged };
  // The use time as listed, before our read (which may have moved the atime where O_NOATIME is refused).
  if (now - entryUseTimeMs(f.stat) > o.olderThanMs) return { reason: 'unused', judged };
  const verdict = o.root && (await sourceVerdict(o.root, [{ rel, size: entry.size, mtimeNs: entry.mtimeNs }]));
  return verdict ? { ...verdict, judged } : null;
}

async function judgeInfo(f: WalkedFile, o: CleanOptions, age: number): Promise<{ reason: RemovalReason; source?: string } | null> {
  const entry = readInfoEntry(f.abs);
  if (!entry) {
    // readInfoEntry also answers null for a missing file; only a file that
    // is still there is corrupt.
    return (await stillThere(f.abs)) ? { reason: 'corrupt' } : null;
  }
  if (age > o.olderThanMs) return { reason: 'unused' };
  if (o.root) return sourceVerdict(o.root, entry.files);
  return null;
}

/** Compares recorded stamps with the files under the root; the first mismatch decides. */
async function sourceVerdict(
  root: MirrorRoot,
  files: ReadonlyArray<{ rel: string; size: number; mtimeNs: bigint }>,
): Promise<{ reason: RemovalReason; source: string } | null> {
  for (const want of files) {
    let have;
    try {
      have = root.file(want.rel);
    } catch (e) {
      // Missing, not a regular file, or now a symlink out of the root: the
      // service would refuse it too. Anything else (permissions, I/O) is not
      // proof the entry is useless, so it is kept and reported.
      if (e instanceof PkgError && (e.kind === 'not-found' || e.kind === 'forbidden' || e.kind === 'bad-request')) {
        return { reason: 'source-gone', source: want.rel };
      }
      throw new PkgError('io', `cannot check source ${want.rel}: ${(e as Error).message}`);
    }
    if (!sameStamp(have, want)) return { reason: 'source-changed', source: want.rel };
  }
  return null;
}

/** "cannot remove: permission denied" rather than Node's message with the absolute path in it. */
function errnoMessage(what: string, e: unknown): string {
  return e instanceof PkgError ? e.message : `${what}: ${errnoText(e)}`;
}

async function stillThere(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Unlinks the file only if it is still the one that was judged. 'gone' when
 * someone else removed it first; 'kept' when it changed under us, or, with
 * `byAtime` (a piece entry), was used.
 */
async function removeIfUnchanged(path: string, judged: Stats, byAtime: boolean): Promise<'removed' | 'gone' | 'kept'> {
  let now: Stats;
  try {
    now = await lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw e;
  }
  if (!now.isFile() || now.ino !== judged.ino || now.dev !== judged.dev || now.size !== judged.size || now.mtimeMs !== judged.mtimeMs) {
    return 'kept';
  }
  if (byAtime && now.atimeMs !== judged.atimeMs) return 'kept';
  try {
    await unlink(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw e;
  }
  return 'removed';
}
