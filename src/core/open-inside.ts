// Opening a file and proving where the opened file is. A path checked with
// realpath can change before it is opened (a directory swapped for a symlink
// to /etc in between), so the check that counts is made on the open file:
// the kernel's own name for it, /proc/self/fd/N, must lie under the
// directory. Used for every read of a mirror file: static files in serve
// and hashing in the workers.
import { closeSync, existsSync, openSync, readlinkSync } from 'node:fs';
import { sep } from 'node:path';

export const PROC_FD = '/proc/self/fd';

/** Without /proc (a bare chroot) opened files cannot be located, only their paths checked before opening. */
export const canLocateOpenFiles = existsSync(PROC_FD);

/** True when `path` is `dir` or lies under it; both absolute and symlink-free. */
export function isUnder(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith(sep) ? dir : dir + sep);
}

/**
 * Opens `path` read-only. Returns the descriptor, or null (nothing left open)
 * when the file that was opened does not lie under `dir`, or `accept` (given
 * the opened file's real path) says no.
 */
export function openInside(path: string, dir: string, accept?: (where: string) => boolean): number | null {
  const fd = openSync(path, 'r');
  if (!canLocateOpenFiles) return fd;
  let where: string;
  try {
    where = readlinkSync(`${PROC_FD}/${fd}`);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  if (isUnder(where, dir) && (accept === undefined || accept(where))) return fd;
  closeSync(fd);
  return null;
}
