// The mirror root: turns request paths into files that are certainly under it.
// Everything that opens a mirror file goes through here, so "nothing outside
// the root is ever read" has exactly one place to be true.
import { realpath, stat } from 'node:fs/promises';
import { realpathSync, statSync } from 'node:fs';
import { isAbsolute, relative, sep } from 'node:path';
import { PkgError, fsError, hiddenFile, outsideRoot } from './errors.js';
import { isUnder, openInside } from './open-inside.js';
import type { FileStamp } from './piece-cache.js';

/** A regular file under the root, with the stamp it had when resolved. */
export interface MirrorFile extends FileStamp {
  /** Root-relative path with '/' separators and no leading slash: "pub/x.rpm". */
  rel: string;
  /** Absolute path on disk, after symlinks, inside the root. */
  abs: string;
  /**
   * The real path of the tree the file lies in (the root, or an allowed
   * outside tree): whoever opens the file later checks it is still under it
   * (see openInside).
   */
  root: string;
}

/** Longest name the file systems of a mirror take (ext4, xfs, btrfs): longer is refused before any lookup. */
export const MAX_NAME_BYTES = 255;
/** Longest root-relative path accepted (Linux's PATH_MAX). */
export const MAX_PATH_BYTES = 4096;

/**
 * Normalises a root-relative path ("/pub/x.rpm" or "pub/x.rpm") and rejects
 * anything that could name a file outside the root or confuse the cache
 * layout: "..", ".", empty segments, NUL, backslashes, and names longer than
 * a file system takes (which would otherwise come back as ENAMETOOLONG).
 */
export function checkRelPath(path: string): string {
  const trimmed = path.replace(/^\/+/, '');
  if (trimmed === '') throw new PkgError('bad-request', `empty path`);
  if (path.includes('\0')) throw new PkgError('forbidden', `path contains a NUL byte`);
  if (path.includes('\\')) throw new PkgError('forbidden', `${path}: backslashes are not allowed in paths`);
  if (Buffer.byteLength(trimmed) > MAX_PATH_BYTES) throw new PkgError('bad-request', `path longer than ${MAX_PATH_BYTES} bytes`);
  const segments = trimmed.split('/');
  for (const s of segments) {
    if (s === '..' || s === '.') throw new PkgError('forbidden', `${path}: '.' and '..' are not allowed in paths`);
    if (s === '') throw new PkgError('bad-request', `${path}: empty path segment`);
    if (Buffer.byteLength(s) > MAX_NAME_BYTES) throw new PkgError('bad-request', `a path segment is longer than ${MAX_NAME_BYTES} bytes`);
  }
  return segments.join('/');
}

/** True when a segment names a hidden file or directory (".git", ".hidden.rpm"). */
export function isDotName(segment: string): boolean {
  return segment.startsWith('.');
}

export interface RootOptions {
  /**
   * Trees outside the root that symbolic links under it may lead into
   * (--allow-outside): the common layout of a web root whose folders are
   * links to storage elsewhere. Reads stay inside the root and these trees.
   */
  allowOutside?: readonly string[];
  /** Hash and serve dot-files and dot-directories too (--dotfiles); by default they are not part of the mirror. */
  dotfiles?: boolean;
}

/** Where a resolved path may be read from: the root or an allowed tree, less our own directories. */
interface Trees {
  /** Real paths of the root and the allowed outside trees. */
  readable: readonly string[];
  /** Real paths of directories of ours (the cache dir) that are never part of the mirror. */
  hidden: readonly string[];
}

export class MirrorRoot {
  private constructor(
    /** The root as given, for messages. */
    readonly dir: string,
    /** The root after symlinks; every resolved file lies under it or under an allowed tree. */
    readonly real: string,
    private readonly trees: Trees,
    /** Dot-files are part of the mirror (see RootOptions.dotfiles). */
    readonly dotfiles: boolean,
  ) {}

  static async open(dir: string, opts: RootOptions = {}): Promise<MirrorRoot> {
    const real = await realDir(dir, 'root');
    const outside: string[] = [];
    for (const d of opts.allowOutside ?? []) outside.push(await realDir(d, 'allow-outside'));
    return new MirrorRoot(dir, real, { readable: [real, ...outside], hidden: [] }, opts.dotfiles ?? false);
  }

  /**
   * The same root with a directory of ours (the cache dir) taken out of it:
   * nothing in it is ever hashed or served, by whatever path or link it is
   * reached. A directory that does not exist yet is taken by its path.
   */
  hiding(dir: string): MirrorRoot {
    let real: string;
    try {
      real = realpathSync.native(dir);
    } catch {
      real = dir;
    }
    return new MirrorRoot(this.dir, this.real, { ...this.trees, hidden: [...this.trees.hidden, real] }, this.dotfiles);
  }

  /**
   * The hidden directories that lie under the root, root-relative: a walk
   * of the tree (a glob) never goes into them.
   */
  get hiddenUnder(): string[] {
    return this.trees.hidden
      .map((h) => relative(this.real, h))
      .filter((rel) => rel !== '' && !rel.startsWith('..') && !isAbsolute(rel))
      .map((rel) => rel.split(sep).join('/'));
  }

  /**
   * Whether an absolute, symlink-free path may be read as part of the mirror:
   * the tree it lies in (the root or an allowed outside tree), or why not.
   */
  admit(abs: string, rel: string): string {
    const tree = this.trees.readable.find((t) => isUnder(abs, t));
    if (tree === undefined) throw outsideRoot(rel);
    if (this.trees.hidden.some((h) => isUnder(abs, h))) throw new PkgError('forbidden', `${rel}: the cache is not part of the mirror`);
    if (!this.dotfiles && relative(tree, abs).split(sep).some(isDotName)) {
      throw hiddenFile(rel);
    }
    return tree;
  }

  private admits(abs: string): boolean {
    try {
      this.admit(abs, '');
      return true;
    } catch {
      return false;
    }
  }

  /** Absolute path of a checked relative path, before symlink resolution. */
  join(rel: string): string {
    return this.real + sep + rel.split('/').join(sep);
  }

  /**
   * Resolves a root-relative path to a regular file of the mirror. A missing
   * file is 'not-found'; one that leads outside the root and the allowed
   * trees, into the cache, or to a hidden name (as asked or as it really is)
   * is 'forbidden'.
   *
   * Synchronous on purpose: a realpath and a stat answered from the kernel's
   * caches take microseconds in-line, but tens of microseconds each through
   * the libuv thread pool, which also runs only four at once. A 200-package
   * POST resolves 200 paths; callers resolving many yield to the event loop
   * between batches (see inTurns).
   */
  file(path: string): MirrorFile {
    const rel = checkRelPath(path);
    if (!this.dotfiles && rel.split('/').some(isDotName)) throw hiddenFile(rel);
    let abs: string;
    try {
      abs = realpathSync.native(this.join(rel));
    } catch (e) {
      throw fsError(e, rel);
    }
    const tree = this.admit(abs, rel);
    let st;
    try {
      st = statSync(abs, { bigint: true });
    } catch (e) {
      throw fsError(e, rel);
    }
    if (!st.isFile()) throw new PkgError('not-found', `${rel}: not a regular file`);
    return { rel, abs, root: tree, size: Number(st.size), mtimeNs: st.mtimeNs };
  }

  /**
   * Opens a resolved file for reading, checking that the file actually opened
   * is still one of the mirror's: between file() and now a directory on its
   * path may have been replaced by a symlink leading out.
   */
  openFile(file: MirrorFile): number {
    let fd: number | null;
    try {
      fd = openInside(file.abs, file.root, (where) => this.admits(where));
    } catch (e) {
      throw fsError(e, file.rel);
    }
    if (fd === null) throw outsideRoot(file.rel);
    return fd;
  }
}

/** A directory's real path, or a usage error naming the setting it came from. */
async function realDir(dir: string, setting: string): Promise<string> {
  try {
    const real = await realpath(dir);
    if (!(await stat(real)).isDirectory()) throw new PkgError('usage', `${setting} ${dir}: not a directory`);
    return real;
  } catch (e) {
    if (e instanceof PkgError) throw e;
    throw new PkgError('usage', `${setting} ${dir}: ${fsError(e, dir).message.replace(`${dir}: `, '')}`);
  }
}

/**
 * Re-reads a file's stamp, to see whether it changed (during hashing, or
 * since a torrent was cached). Synchronous, for revalidating cached torrents
 * on every request: a stat served from the inode cache costs about a
 * microsecond in-line, while an async stat pays a thread-pool round trip
 * per file, which for a 40-file torrent cost more than answering the
 * request.
 */
export function currentStampSync(abs: string): FileStamp | null {
  const st = statSync(abs, { bigint: true, throwIfNoEntry: false });
  return st ? { size: Number(st.size), mtimeNs: st.mtimeNs } : null;
}
