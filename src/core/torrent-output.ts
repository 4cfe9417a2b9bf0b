// Where a made torrent goes: a file that is never replaced without --force
// and never left half-written, or '-' for a stream.
import { lstat } from 'node:fs/promises';
import { writeOutput } from './atomic.js';
import { PkgError } from './errors.js';

const exists = (path: string) => new PkgError('exists', `${path}: already exists (use --force to replace it)`);

/** Fails before hashing, rather than after, when the output exists. */
export async function checkOutputFree(path: string, force: boolean | undefined): Promise<void> {
  if (path === '-' || force) return;
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
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EEXIST') throw exists(path);
    if (e instanceof PkgError) throw e;
    throw new PkgError('io', `cannot write ${path}: ${err.message}`);
  }
}
