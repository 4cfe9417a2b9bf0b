// Where a made torrent goes: a file that is never replaced without --force
// and never left half-written, or '-' for a stream.
import { lstat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { writeOutput } from './atomic.js';
import { PkgError, usageError } from './errors.js';

const exists = (path: string) => new PkgError('exists', `${path}: already exists (use --force to replace it)`);

/** Fails before hashing, rather than after, when the output cannot be written. */
export async function checkOutputFree(path: string, force: boolean | undefined, stdout: { isTTY?: boolean }): Promise<void> {
  if (path === '-') {
    // Bencoded binary on a terminal is garbage on the screen, not a torrent.
    if (stdout.isTTY && !force) throw usageError("-o -: stdout is a terminal; redirect it to a file or pipe (or use --force)");
    return;
  }
  if (force) return;
  const found = await lstat(path).then(
    () => true,
    () => false,
  );
  if (found) throw exists(path);
}

export async function writeTorrentOutput(path: string, bytes: Buffer, force: boolean | undefined, stdout: NodeJS.WritableStream): Promise<void> {
  try {
    await writeOutput(path, bytes, { force: Boolean(force), stdout });
  } catch (e) {
    if (e instanceof PkgError || path === '-') throw e;
    throw writeError(path, e as NodeJS.ErrnoException);
  }
}

// The system's message names the temporary file; the user knows only the output.
function writeError(path: string, err: NodeJS.ErrnoException): PkgError {
  switch (err.code) {
    case 'EEXIST':
      return exists(path);
    case 'ENOENT':
    case 'ENOTDIR':
      return new PkgError('io', `cannot write ${path}: no such directory ${dirname(path)}`);
    case 'EACCES':
    case 'EPERM':
      return new PkgError('io', `cannot write ${path}: permission denied`);
    case 'EISDIR':
      return new PkgError('io', `cannot write ${path}: is a directory`);
    default:
      return new PkgError('io', `cannot write ${path}: ${err.code ?? err.message}`);
  }
}
