import { access, mkdir } from 'node:fs/promises';
import { constants } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { PkgError } from './errors.js';

async function writable(dir: string): Promise<boolean> {
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Where a user's cache goes when the default one cannot be used. */
export function fallbackCacheDir(env: Record<string, string | undefined>): string {
  return join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache'), 'pkgtorrent');
}

/**
 * The cache dir to use. The default (/var/cache/torrent_service) is usually
 * not writable by a user running `make` from a shell, so only the default
 * falls back to $XDG_CACHE_HOME/pkgtorrent or ~/.cache/pkgtorrent, saying so
 * once; a dir the operator chose explicitly is never silently replaced.
 */
export async function openCacheDir(
  dir: string,
  isDefault: boolean,
  env: Record<string, string | undefined>,
  warn: (msg: string) => void,
): Promise<string> {
  if (await writable(dir)) return dir;
  if (!isDefault) throw new PkgError('io', `cache dir ${dir}: cannot be created or written`);
  const fallback = fallbackCacheDir(env);
  if (!(await writable(fallback))) throw new PkgError('io', `cache dir ${dir} and fallback ${fallback}: cannot be created or written`);
  warn(`cache dir ${dir} is not writable; using ${fallback}`);
  return fallback;
}
