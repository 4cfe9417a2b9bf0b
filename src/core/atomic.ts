import { closeSync, constants, existsSync, fstatSync, futimesSync, mkdirSync, openSync, readSync, renameSync, rmSync, writeSync, type Stats } from 'node:fs';
import { link, open, rename, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname } from 'node:path';

// Temporary files carry this marker so `cache clean` can recognise the
// leftovers of an interrupted write and nothing else.
export const TEMP_MARKER = '.pkgtorrent-tmp-';

// Unique per process and thread without asking for random bytes per file (a
// getrandom call and a buffer: 1.5 % of a cold `hash` of small files).
const TEMP_SALT = randomBytes(4).toString('hex');
let tempCount = 0;

/** A name for `path`'s temporary file, beside it: ".<name>.pkgtorrent-tmp-<pid>-<salt><n>". */
export function tempPathFor(path: string): string {
  // Sliced rather than dirname/basename/join, once per cache entry written.
  const cut = path.lastIndexOf('/') + 1;
  return `${path.slice(0, cut)}.${path.slice(cut)}${TEMP_MARKER}${process.pid}-${TEMP_SALT}${(tempCount++).toString(36)}`;
}

export function isTempName(name: string): boolean {
  return name.includes(TEMP_MARKER);
}

/**
 * Writes `data` to `path` so that a reader sees either the old file or the
 * whole new one: write a temporary file in the same directory, then rename.
 * We do not fsync: every reader validates what it reads (length, checksum), so
 * a file torn by a power cut is treated as missing rather than trusted.
 *
 * Synchronous: the files written are cache entries and torrents, a few KiB
 * that land in the page cache. In-line that is five system calls; through
 * the libuv thread pool it was five round trips, each a thread wake-up that
 * costs a few hundred microseconds on an idle virtual machine.
 */
export function writeFileAtomic(
  path: string,
  data: Uint8Array | Uint8Array[],
  mode = 0o644,
  /** The file's atime and mtime (seconds), set before it gets its name: no reader sees other times. */
  times?: { atime: number; mtime: number },
): void {
  const tmp = tempPathFor(path);
  const fd = openInFreshDir(tmp, mode);
  try {
    try {
      writeAll(fd, Array.isArray(data) ? Buffer.concat(data) : data);
      if (times) futimesSync(fd, times.atime, times.mtime);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

function writeAll(fd: number, data: Uint8Array): void {
  for (let done = 0; done < data.length; ) done += writeSync(fd, data, done, data.length - done);
}

/**
 * Creates `path` exclusively, making its directory first. `cache clean` may
 * rmdir a directory it found empty between our mkdir and our open; then the
 * open fails with ENOENT and we simply make the directory again. Once the
 * temp file exists the directory is not empty, so the rename cannot race.
 */
function openInFreshDir(path: string, mode: number): number {
  for (let attempt = 1; ; attempt++) {
    try {
      mkdirsSync(dirname(path));
      return openSync(path, 'wx', mode);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 5) throw e;
    }
  }
}

/**
 * mkdir -p that reports the real reason. Node's recursive mkdir turns an
 * error it does not expect (EROFS on a read-only mount, EDQUOT) into ENOENT
 * when the directory is missing; the caller must tell a cache that cannot be
 * written from a directory that vanished, so the levels are then made one by
 * one, which fails with the file system's own error.
 */
export function mkdirsSync(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    mkdirEach(dir);
  }
}

function mkdirEach(dir: string): void {
  const parent = dirname(dir);
  if (parent !== dir && !existsSync(parent)) mkdirEach(parent);
  try {
    mkdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
}

/**
 * Reads a whole cache entry, with its atime and mtime as they were before
 * the read (the entry's use time, see piece-cache.ts), or null when it cannot
 * be read: a reader treats that as a miss. One open serves both, so a hit
 * costs no separate stat. Synchronous, like MirrorRoot.file: entries are
 * small files in the cache dir, four calls in-line cost far less than four
 * thread-pool round trips, and a cold POST reads hundreds.
 */
export function readCacheFileSync(path: string): { data: Buffer; mtimeMs: number; atimeMs: number } | null {
  let fd;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    const st = fstatSync(fd);
    return { data: readWhole(fd, st.size), mtimeMs: st.mtimeMs, atimeMs: st.atimeMs };
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

function readWhole(fd: number, size: number): Buffer {
  // One byte more than the stat says, to notice a file that grew since.
  const data = Buffer.allocUnsafe(size + 1);
  let got = 0;
  while (got < data.length) {
    const n = readSync(fd, data, got, data.length - got, got);
    if (n === 0) break;
    got += n;
  }
  return data.subarray(0, got);
}

/**
 * Reads a whole file without making it look used: with O_NOATIME where the
 * kernel allows it (our own files, or root), since a read would otherwise
 * move the atime that is a piece entry's use time. Returns the file's stat
 * after the read, so a caller comparing it later sees only others' changes.
 * Null when the file is gone.
 */
export function readQuietlySync(path: string): { data: Buffer; stat: Stats } | null {
  let fd;
  try {
    try {
      fd = openSync(path, constants.O_RDONLY | constants.O_NOATIME);
    } catch (e) {
      // EPERM: neither the file's owner nor privileged; read it the ordinary way.
      if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
      fd = openSync(path, 'r');
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    const data = readWhole(fd, fstatSync(fd).size);
    return { data, stat: fstatSync(fd) };
  } finally {
    closeSync(fd);
  }
}

/**
 * Atomic write to a stdout-or-file target; `-` means the given stream. The
 * directory must exist, as for mktorrent: a typo in -o should fail, not
 * create a tree of directories.
 */
export async function writeOutput(
  path: string,
  data: Uint8Array,
  opts: { force: boolean; stdout: NodeJS.WritableStream },
): Promise<void> {
  if (path === '-') {
    await new Promise<void>((resolve, reject) => opts.stdout.write(data, (e) => (e ? reject(e) : resolve())));
    return;
  }
  const tmp = tempPathFor(path);
  const fh = await open(tmp, 'wx', 0o644);
  try {
    try {
      await fh.writeFile(data);
    } finally {
      await fh.close();
    }
    // Without --force the final name must not exist; link() fails with EEXIST
    // atomically, unlike a stat-then-rename which races with other writers.
    if (opts.force) await rename(tmp, path);
    else await link(tmp, path);
  } finally {
    await unlink(tmp).catch(() => {});
  }
}
