import { access, mkdir, stat } from 'node:fs/promises';
import { constants } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { PkgError } from './errors.js';
import { INFO_DIR } from './info-entry.js';
import { PIECES_DIR } from './piece-cache.js';

/** Why dir cannot be created or written, or null when it can. */
async function writeError(dir: string): Promise<NodeJS.ErrnoException | null> {
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
    return null;
  } catch (e) {
    return e as NodeJS.ErrnoException;
  }
}

/** A directory that exists and can be read: its entries can answer requests. */
async function readable(dir: string): Promise<boolean> {
  try {
    await access(dir, constants.R_OK | constants.X_OK);
    return (await stat(dir)).isDirectory();
  } catch {
    return false;
  }
}

/** Holds cache entries already (not merely an empty or foreign directory). */
async function populated(dir: string): Promise<boolean> {
  for (const sub of [PIECES_DIR, INFO_DIR]) if (await readable(join(dir, sub))) return true;
  return false;
}

/** Where a user's cache goes when the default one cannot be used. */
export function fallbackCacheDir(env: Record<string, string | undefined>): string {
  return join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache'), 'pkgtorrent');
}

/** The cache dir to use, and what opening it found. */
export interface CacheDir {
  dir: string;
  /**
   * Why the dir cannot be written, for a dir kept read-only (only with
   * readOnlyOk); null when it can be. The caller's CacheWrites starts from
   * this rather than looking again.
   */
  unwritable: NodeJS.ErrnoException | null;
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
  opts: { readOnlyOk?: boolean } = {},
): Promise<CacheDir> {
  const unwritable = await writeError(dir);
  if (!unwritable) return { dir, unwritable };
  // A caller that can answer from entries without writing (serve) keeps a
  // read-only cache rather than trading its hits for an empty fallback; it
  // reports the condition itself (CacheWrites, from `unwritable`). The
  // default dir is kept only when it holds entries, otherwise the fallback
  // is the better cache.
  if (opts.readOnlyOk && (await readable(dir)) && (!isDefault || (await populated(dir)))) return { dir, unwritable };
  if (!isDefault) throw new PkgError('io', `cache dir ${dir}: cannot be created or written`);
  const fallback = fallbackCacheDir(env);
  if (await writeError(fallback)) throw new PkgError('io', `cache dir ${dir} and fallback ${fallback}: cannot be created or written`);
  warn(`cache dir ${dir} is not writable; using ${fallback}`);
  return { dir: fallback, unwritable: null };
}
