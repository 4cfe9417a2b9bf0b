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
export function fallbackCacheDir(env: Record<string, string | undefined>, name = 'pkgtorrent'): string {
  return join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache'), name);
}

/** Why a store (the dir and the subdirectories it writes in) cannot be used, or null. */
async function storeError(dir: string): Promise<NodeJS.ErrnoException | null> {
  for (const d of [dir, join(dir, 'partial'), join(dir, 'done')]) {
    const err = await writeError(d);
    if (err) return err;
  }
  return null;
}

/**
 * The proxy's store. As with the cache dir, only the default
 * (/var/cache/pkgtorrent-proxy, root's) falls back to the user's cache
 * ($XDG_CACHE_HOME or ~/.cache, pkgtorrent-proxy), saying so once; a store
 * chosen explicitly that cannot be written is one error naming it.
 */
export async function openStoreDir(dir: string, isDefault: boolean, env: Record<string, string | undefined>, warn: (msg: string) => void): Promise<string> {
  const err = await storeError(dir);
  if (!err) return dir;
  const why = err.code === 'EACCES' || err.code === 'EPERM' ? 'permission denied' : (err.code ?? err.message);
  if (!isDefault) throw new PkgError('io', `store ${dir}: cannot be created or written (${why}); choose another with --store`);
  const fallback = fallbackCacheDir(env, 'pkgtorrent-proxy');
  if (await storeError(fallback)) throw new PkgError('io', `store ${dir} and fallback ${fallback}: cannot be created or written; choose one with --store`);
  warn(`store ${dir} is not writable (${why}); using ${fallback}`);
  return fallback;
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
