import { link, mkdir, open, rename, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

// Temporary files carry this marker so `cache clean` can recognise the
// leftovers of an interrupted write and nothing else.
export const TEMP_MARKER = '.pkgtorrent-tmp-';

export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}${TEMP_MARKER}${process.pid}-${randomBytes(6).toString('hex')}`);
}

export function isTempName(name: string): boolean {
  return name.includes(TEMP_MARKER);
}

/**
 * Writes `data` to `path` so that a reader sees either the old file or the
 * whole new one: write a temporary file in the same directory, then rename.
 * We do not fsync: every reader validates what it reads (length, checksum), so
 * a file torn by a power cut is treated as missing rather than trusted.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | Uint8Array[], mode = 0o644): Promise<void> {
  const tmp = tempPathFor(path);
  const fh = await openInFreshDir(tmp, mode);
  try {
    try {
      if (Array.isArray(data)) await fh.writev(data);
      else await fh.writeFile(data);
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

/**
 * Creates `path` exclusively, making its directory first. `cache clean` may
 * rmdir a directory it found empty between our mkdir and our open; then the
 * open fails with ENOENT and we simply make the directory again. Once the
 * temp file exists the directory is not empty, so the rename cannot race.
 */
async function openInFreshDir(path: string, mode: number) {
  for (let attempt = 1; ; attempt++) {
    try {
      await mkdir(dirname(path), { recursive: true });
      return await open(path, 'wx', mode);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= 5) throw e;
    }
  }
}

/**
 * Reads a whole cache entry, with its mtime (the entry's use time), or null
 * when it cannot be read: a reader treats that as a miss. One open serves
 * both, so a hit costs no separate stat.
 */
export async function readCacheFile(path: string): Promise<{ data: Buffer; mtimeMs: number } | null> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch {
    return null;
  }
  try {
    const st = await fh.stat();
    return { data: await fh.readFile(), mtimeMs: st.mtimeMs };
  } catch {
    return null;
  } finally {
    await fh.close();
  }
}

/** Atomic write to a stdout-or-file target; `-` means the given stream. */
export async function writeOutput(
  path: string,
  data: Uint8Array,
  opts: { force: boolean; stdout: NodeJS.WritableStream },
): Promise<void> {
  if (path === '-') {
    await new Promise<void>((resolve, reject) => opts.stdout.write(data, (e) => (e ? reject(e) : resolve())));
    return;
  }
  if (opts.force) return writeFileAtomic(path, data);
  // Without --force the final name must not exist; link() fails with EEXIST
  // atomically, unlike a stat-then-rename which races with other writers.
  await mkdir(dirname(path), { recursive: true });
  const tmp = tempPathFor(path);
  const fh = await open(tmp, 'wx', 0o644);
  try {
    try {
      await fh.writeFile(data);
    } finally {
      await fh.close();
    }
    await link(tmp, path);
  } finally {
    await unlink(tmp).catch(() => {});
  }
}
