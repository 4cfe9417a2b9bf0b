// The content of a torrent made from a path on disk, laid out as mktorrent
// lays it out: one file, or every regular file under a directory in byte
// order of its relative path, concatenated into one stream whose pieces run
// across file boundaries (no padding). Listing lives here, hashing in
// content-hash.ts; the info dictionary is assembled by the caller.
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
//
// A mirror tree holds hundreds of thousands of files, so nothing here keeps
// a record per file: the walk goes depth first in the final order, one
// directory's listing at a time, and each file leaves behind only its
// bencoded `files` entry (some 50 bytes) once its pieces are hashed.
import { realpath } from 'node:fs/promises';
import { lstatSync, readdirSync, statSync, type BigIntStats, type Stats } from 'node:fs';
import { basename, normalize } from 'node:path';
import { PkgError, fsError } from './errors.js';

/** A regular file of the content, as the walk meets it. */
export interface ContentFile {
  /** Path to open (may go through symlinks, as mktorrent's does). */
  abs: string;
  /** Path as the user knows it, for messages: "dir/sub/file". */
  display: string;
  /** Its path below the top as bencoded list items ("3:sub5:a.rpm"); '' for a single-file torrent. */
  pathItems: string;
  /** The file as listed; hashing fails if what it reads no longer matches (see Segment.expect). */
  stamp: { ino: number; size: number; mtimeMs: number };
}

/** A file or directory to make a torrent of, walked afresh by each call of files(). */
export interface Content {
  kind: 'single' | 'multi';
  display: string;
  files(): Generator<ContentFile>;
}

export interface ListOptions {
  /** Path as the user gave it, for messages (default: `abs`). */
  display?: string;
  /** Files to leave out (dev and ino): our own output file, when it lies inside the tree. */
  exclude?: ReadonlyArray<{ dev: number; ino: number }>;
}

/** A file or a directory (absolute path), to be listed as mktorrent would put it into a torrent. */
export function openContent(abs: string, opts: ListOptions = {}): Content {
  const display = opts.display ?? abs;
  const st = statOrFail(abs, display);
  if (st.isFile()) {
    const file: ContentFile = { abs, display, pathItems: '', stamp: stampOf(st) };
    if (st.size === 0) throw new PkgError('not-found', `${display}: empty file, nothing to put in a torrent`);
    return {
      kind: 'single',
      display,
      *files() {
        yield file;
      },
    };
  }
  if (!st.isDirectory()) throw new PkgError('not-found', `${display}: not a regular file or directory`);
  // Names are shown as path.join would show them ("./d/" lists "d/a", "." lists "a").
  const shown = normalize(display);
  const top = { abs: withSlash(abs), display: shown === '.' ? '' : withSlash(shown), id: fileId(statOrFail(abs, display, true)) };
  const exclude = opts.exclude ?? [];
  return { kind: 'multi', display, files: () => walk({ exclude, ancestors: new Set([top.id]) }, top.abs, top.display, '') };
}

/** `p` with one trailing slash, so names are appended without path.join's cost per file. */
function withSlash(p: string): string {
  return p.endsWith('/') ? p : p + '/';
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
  exclude: ReadonlyArray<{ dev: number; ino: number }>;
  // Directories along the current branch, by dev:ino, so a symlink back to
  // an ancestor is an error instead of endless recursion.
  ancestors: Set<string>;
}

/**
 * One entry of a directory being walked: what the walk needs of its stat,
 * taken out at once. A Stats object is some twenty heap objects (dates,
 * numbers); a directory's worth of them kept until it was sorted outlived
 * young-generation collections, and dropping them halved the walk's
 * garbage-collection time (profiled on 10k files).
 */
interface Entry {
  /** What it sorts by: the name, a directory's with '/' after it. */
  key: string;
  name: string;
  /** null for a directory. */
  stamp: ContentFile['stamp'] | null;
}

/**
 * Yields the regular files below `dir` in strcmp() order of their whole
 * relative paths. Sorting each directory's names, a directory's as "name/",
 * gives that order without holding the whole tree: two paths first differ
 * within the names of one directory, where the character after a
 * directory's name is its '/'. `dir` and `display` end in '/'; `items` is
 * the directory's path as bencoded list items.
 */
function* walk(w: Walker, dir: string, display: string, items: string): Generator<ContentFile> {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw fsError(e, display.slice(0, -1) || '.');
  }
  // stat() rather than the dirent type: symlinks are followed, as mktorrent
  // does, and the size is needed anyway. Synchronous: a stat from the inode
  // cache is a microsecond, a thread-pool round trip tens of them.
  const entries: Entry[] = [];
  for (const name of names) {
    checkName(name, display + name);
    const st = statOrFail(dir + name, display + name);
    if (st.isDirectory()) entries.push({ key: name + '/', name, stamp: null });
    else if (st.isFile() && !w.exclude.some((x) => x.ino === st.ino && x.dev === st.dev)) entries.push({ key: name, name, stamp: stampOf(st) });
    // Anything else (FIFO, socket, device) is not content, as for mktorrent.
  }
  entries.sort((a, b) => compareUtf8(a.key, b.key));
  for (const e of entries) {
    const item = `${Buffer.byteLength(e.name)}:${e.name}`;
    if (e.stamp === null) {
      const sub = dir + e.key;
      // Exact inode numbers (bigint) for the loop check: once per directory.
      const id = fileId(statOrFail(sub, display + e.name, true));
      if (w.ancestors.has(id)) throw new PkgError('forbidden', `${display}${e.name}: symbolic link loop (a directory contains itself)`);
      w.ancestors.add(id);
      yield* walk(w, sub, display + e.key, items + item);
      w.ancestors.delete(id);
    } else {
      yield { abs: dir + e.name, display: display + e.name, pathItems: items + item, stamp: e.stamp };
    }
  }
}

const stampOf = (st: Stats) => ({ ino: st.ino, size: st.size, mtimeMs: st.mtimeMs });

// A name that is not valid UTF-8 reaches us with U+FFFD in it: the torrent
// would name a different file than the one hashed.
function checkName(name: string, display: string): void {
  if (name.includes('\uFFFD')) throw new PkgError('io', `${display}: file name is not valid UTF-8`);
}

function statOrFail(path: string, display: string): Stats;
function statOrFail(path: string, display: string, bigint: true): BigIntStats;
function statOrFail(path: string, display: string, bigint = false): Stats | BigIntStats {
  try {
    return statSync(path, { bigint });
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

/** The sizes of the content, for what must be known before hashing starts (-l auto, a progress bar). */
export function measureContent(content: Content): { files: number; totalSize: number } {
  let files = 0;
  let totalSize = 0;
  for (const f of content.files()) {
    files++;
    totalSize += f.stamp.size;
  }
  return { files, totalSize };
}
