// The mirror root: turns request paths into files that are certainly under it.
// Everything that opens a mirror file goes through here, so "nothing outside
// the root is ever read" has exactly one place to be true.
import { realpath, stat } from 'node:fs/promises';
import { realpathSync, statSync } from 'node:fs';
import { isAbsolute, relative, sep } from 'node:path';
import { PkgError, fsError } from './errors.js';
import { isUnder, openInside } from './open-inside.js';
import type { FileStamp } from './piece-cache.js';

/** A regular file under the root, with the stamp it had when resolved. */
export interface MirrorFile extends FileStamp {
  /** Root-relative path with '/' separators and no leading slash: "pub/x.rpm". */
  rel: string;
  /** Absolute path on disk, after symlinks, inside the root. */
  abs: string;
  /** The root's real path: whoever opens the file later checks it is still under it (see openInside). */
  root: string;
}

/**
 * Normalises a root-relative path ("/pub/x.rpm" or "pub/x.rpm") and rejects
 * anything that could name a file outside the root or confuse the cache
 * layout: "..", ".", empty segments, NUL, backslashes.
 */
export function checkRelPath(path: string): string {
  const trimmed = path.replace(/^\/+/, '');
  if (trimmed === '') throw new PkgError('bad-request', `empty path`);
  if (path.includes('\0')) throw new PkgError('forbidden', `path contains a NUL byte`);
  if (path.includes('\\')) throw new PkgError('forbidden', `${path}: backslashes are not allowed in paths`);
  const segments = trimmed.split('/');
  for (const s of segments) {
    if (s === '..' || s === '.') throw new PkgError('forbidden', `${path}: '.' and '..' are not allowed in paths`);
    if (s === '') throw new PkgError('bad-request', `${path}: empty path segment`);
  }
  return segments.join('/');
}

export class MirrorRoot {
  private constructor(
    /** The root as given, for messages. */
    readonly dir: string,
    /** The root after symlinks; every resolved file lies under it. */
    readonly real: string,
  ) {}

  static async open(dir: string): Promise<MirrorRoot> {
    let real: string;
    try {
      real = await realpath(dir);
      if (!(await stat(real)).isDirectory()) throw new PkgError('usage', `root ${dir}: not a directory`);
    } catch (e) {
      if (e instanceof PkgError) throw e;
      throw new PkgError('usage', `root ${dir}: ${fsError(e, dir).message.replace(`${dir}: `, '')}`);
    }
    return new MirrorRoot(dir, real);
  }

  /** True when an absolute, symlink-free path lies inside the root. */
  contains(abs: string): boolean {
    return isUnder(abs, this.real);
  }

  /**
   * A directory of ours (the cache dir) as a root-relative path when it lies
   * under the root, else null: such a directory is never hashed or served.
   */
  async relativeInside(dir: string): Promise<string | null> {
    const rel = relative(this.real, await realpath(dir).catch(() => dir));
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return null;
    return rel.split(sep).join('/');
  }

  /** Absolute path of a checked relative path, before symlink resolution. */
  join(rel: string): string {
    return this.real + sep + rel.split('/').join(sep);
  }

  /**
   * Resolves a root-relative path to a regular file inside the root. A missing
   * file is 'not-found'; a symlink that leads outside is 'forbidden'.
   *
   * Synchronous on purpose: a realpath and a stat answered from the kernel's
   * caches take microseconds in-line, but tens of microseconds each through
   * the libuv thread pool, which also runs only four at once. A 200-package
   * POST resolves 200 paths; callers resolving many yield to the event loop
   * between batches (see inTurns).
   */
  file(path: string): MirrorFile {
    const rel = checkRelPath(path);
    let abs: string;
    try {
      abs = realpathSync.native(this.join(rel));
    } catch (e) {
      throw fsError(e, rel);
    }
    if (!this.contains(abs)) throw new PkgError('forbidden', `${rel}: resolves outside the root`);
    let st;
    try {
      st = statSync(abs, { bigint: true });
    } catch (e) {
      throw fsError(e, rel);
    }
    if (!st.isFile()) throw new PkgError('not-found', `${rel}: not a regular file`);
    return { rel, abs, root: this.real, size: Number(st.size), mtimeNs: st.mtimeNs };
  }

  /**
   * Opens a resolved file for reading, checking the file actually opened is
   * still inside the root: between file() and now a directory on its path may
   * have been replaced by a symlink leading out.
   */
  openFile(file: MirrorFile): number {
    let fd: number | null;
    try {
      fd = openInside(file.abs, this.real);
    } catch (e) {
      throw fsError(e, file.rel);
    }
    if (fd === null) throw new PkgError('forbidden', `${file.rel}: resolves outside the root`);
    return fd;
  }
}

/** Re-reads a file's stamp; used to detect a change during hashing. */
export async function currentStamp(abs: string): Promise<FileStamp | null> {
  try {
    const st = await stat(abs, { bigint: true });
    return { size: Number(st.size), mtimeNs: st.mtimeNs };
  } catch {
    return null;
  }
}

/**
 * The same, synchronously. For revalidating cached torrents on every request:
 * a stat served from the inode cache costs about a microsecond in-line, while
 * the async form pays a thread-pool round trip per file, which for a 40-file
 * torrent cost more than answering the request.
 */
export function currentStampSync(abs: string): FileStamp | null {
  const st = statSync(abs, { bigint: true, throwIfNoEntry: false });
  return st ? { size: Number(st.size), mtimeNs: st.mtimeNs } : null;
}
