// The content of a torrent made from a path on disk, laid out as mktorrent
// lays it out: one file, or every regular file under a directory in byte
// order of its relative path, concatenated into one stream whose pieces run
// across file boundaries (no padding). Listing and hashing live here; the
// info dictionary is assembled by the caller from the result.
//
// What mktorrent 1.1 does, checked by experiment, and what we do:
// - hidden files and directories are included; so are empty files (they get
//   a `files` entry of length 0 and add no bytes to the stream);
// - symbolic links are followed, to files and to directories; a dangling
//   link is an error (mktorrent stops too); a directory loop is an error;
// - FIFOs, sockets and devices are skipped silently;
// - order is strcmp() over the whole relative path, so "a.txt" sorts before
//   "a/b" ('.' < '/') and "B" before "a";
// - an unreadable file: mktorrent warns and leaves it out, which yields a
//   torrent silently missing a file. We refuse instead.
import { opendir, realpath } from 'node:fs/promises';
import { accessSync, constants, lstatSync, statSync, type BigIntStats } from 'node:fs';
import { basename, join } from 'node:path';
import { PkgError, fsError } from './errors.js';
import type { HashPool, Segment } from './hasher.js';
import { sameStamp } from './piece-cache.js';
import { currentStampSync } from './root.js';

/**
 * A regular file of the content, with the stamp it had when listed. Its
 * paths are made from the top directory's when asked for, not stored: a
 * mirror tree has hundreds of thousands of files, and two full path strings
 * each were most of what make held per file.
 */
export class ContentFile {
  constructor(
    /** The top (the path given to make), as opened and as the user wrote it. */
    private readonly top: { abs: string; display: string },
    /** Segments below the torrent's top directory; [] for a single-file torrent. */
    readonly path: string[],
    readonly size: number,
    readonly mtimeNs: bigint,
  ) {}

  /** Absolute path to open (may go through symlinks, as mktorrent's does). */
  get abs(): string {
    return this.path.length ? join(this.top.abs, ...this.path) : this.top.abs;
  }

  /** Path as the user knows it, for messages: "dir/sub/file". */
  get display(): string {
    return this.path.length ? join(this.top.display, ...this.path) : this.top.display;
  }
}

export interface Content {
  kind: 'single' | 'multi';
  files: ContentFile[];
  totalSize: number;
}

export interface ListOptions {
  /** Path as the user gave it, for messages (default: `abs`). */
  display?: string;
  /** "dev:ino" of files to leave out: our own output file, when it lies inside the tree. */
  excludeIds?: ReadonlySet<string>;
}

/** Lists a file or a directory (absolute path) as mktorrent would put it into a torrent. */
export async function listContent(abs: string, opts: ListOptions = {}): Promise<Content> {
  const display = opts.display ?? abs;
  const st = statOrFail(abs, display);
  if (st.isFile()) {
    checkReadable(abs, display);
    const size = Number(st.size);
    if (size === 0) throw new PkgError('not-found', `${display}: empty file, nothing to put in a torrent`);
    return { kind: 'single', files: [new ContentFile({ abs, display }, [], size, st.mtimeNs)], totalSize: size };
  }
  if (!st.isDirectory()) throw new PkgError('not-found', `${display}: not a regular file or directory`);
  const files: ContentFile[] = [];
  const walker = { top: { abs, display }, out: files, exclude: opts.excludeIds ?? new Set<string>(), ancestors: new Set([fileId(st)]) };
  await walk(walker, abs, display, []);
  if (files.length === 0) throw new PkgError('not-found', `${display}: empty directory, nothing to put in a torrent`);
  // strcmp() order of the whole relative path, as UTF-8 bytes.
  const keyed = files.map((f) => ({ f, key: f.path.join('/') }));
  keyed.sort((a, b) => compareUtf8(a.key, b.key));
  const sorted = keyed.map((k) => k.f);
  const totalSize = sorted.reduce((s, f) => s + f.size, 0);
  if (totalSize === 0) throw new PkgError('not-found', `${display}: every file is empty, nothing to put in a torrent`);
  return { kind: 'multi', files: sorted, totalSize };
}

/**
 * Compares strings in the byte order of their UTF-8 encodings (strcmp's)
 * without encoding them. That is code point order; UTF-16 code units agree
 * with it except that surrogates (U+D800-DFFF, the halves of a character
 * above U+FFFF) must sort after U+E000-FFFF.
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800) x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
    if (y >= 0xd800) y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    return x - y;
  }
  return a.length - b.length;
}

/**
 * The base name of the path as given ("dir/" gives "dir"). For ".", ".." or
 * "/" that is no name at all (mktorrent writes "."), so the real directory's
 * name is used instead.
 */
export async function torrentNameFor(display: string, abs: string): Promise<string> {
  let name = basename(display.replace(/\/+$/, ''));
  if (name === '.' || name === '..' || name === '') {
    try {
      name = basename(await realpath(abs));
    } catch (e) {
      throw fsError(e, display);
    }
  }
  if (name === '') throw new PkgError('usage', `${display}: cannot name a torrent after it; give a name with -n`);
  return name;
}

export function fileId(st: { dev: bigint | number; ino: bigint | number }): string {
  return `${st.dev}:${st.ino}`;
}

interface Walker {
  top: { abs: string; display: string };
  out: ContentFile[];
  exclude: ReadonlySet<string>;
  // Directories along the current branch, by dev:ino, so a symlink back to
  // an ancestor is an error instead of endless recursion.
  ancestors: Set<string>;
}

async function walk(w: Walker, dir: string, display: string, rel: string[]): Promise<void> {
  const names: string[] = [];
  try {
    for await (const entry of await opendir(dir)) names.push(entry.name);
  } catch (e) {
    throw fsError(e, display);
  }
  // stat() rather than the dirent type: symlinks are followed, as mktorrent
  // does. In-line: a stat from the inode cache is a microsecond, a thread-pool
  // round trip tens of them, and a mirror directory holds thousands of files.
  const entries = names.map((n) => {
    const d = join(display, n);
    checkName(n, d);
    return { n, abs: join(dir, n), display: d, st: statOrFail(join(dir, n), d) };
  });
  for (const e of entries) {
    const id = fileId(e.st);
    if (e.st.isDirectory()) {
      if (w.ancestors.has(id)) throw new PkgError('forbidden', `${e.display}: symbolic link loop (a directory contains itself)`);
      w.ancestors.add(id);
      await walk(w, e.abs, e.display, [...rel, e.n]);
      w.ancestors.delete(id);
    } else if (e.st.isFile()) {
      if (w.exclude.has(id)) continue;
      checkReadable(e.abs, e.display);
      w.out.push(new ContentFile(w.top, [...rel, e.n], Number(e.st.size), e.st.mtimeNs));
    }
    // Anything else (FIFO, socket, device) is not content, as for mktorrent.
  }
}

// A name that is not valid UTF-8 reaches us with U+FFFD in it: the torrent
// would name a different file than the one hashed.
function checkName(name: string, display: string): void {
  if (name.includes('\uFFFD')) throw new PkgError('io', `${display}: file name is not valid UTF-8`);
}

function statOrFail(path: string, display: string): BigIntStats {
  try {
    return statSync(path, { bigint: true });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ENOENT' && isSymlink(path)) throw new PkgError('not-found', `${display}: dangling symbolic link`);
    if (err.code === 'ELOOP') throw new PkgError('forbidden', `${display}: symbolic link loop`);
    throw fsError(e, display);
  }
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}

function checkReadable(path: string, display: string): void {
  try {
    accessSync(path, constants.R_OK);
  } catch (e) {
    throw fsError(e, display);
  }
}

/** The content as one stream of segments; empty files contribute nothing. */
export function contentSegments(content: Content): Segment[] {
  return content.files.filter((f) => f.size > 0).map((f) => ({ path: f.abs, name: f.display, offset: 0, length: f.size }));
}

/**
 * SHA-1 of every piece of the content stream, pieces running across file
 * boundaries and the last one short, as mktorrent hashes. Every file must
 * still have its listed size and mtime afterwards, or the hashes could mix
 * two versions of it.
 */
export async function hashContent(pool: HashPool, content: Content, pieceLength: number, onProgress?: (bytes: number) => void): Promise<Buffer> {
  const { pieces } = await pool.hashStream(contentSegments(content), pieceLength, { onProgress });
  for (const f of content.files) {
    let now;
    try {
      now = currentStampSync(f.abs);
    } catch {
      now = null;
    }
    if (!now || !sameStamp(now, f)) throw new PkgError('changed', `${f.display}: changed while it was hashed`);
  }
  return pieces;
}
