// `cache stats`: what a cache dir holds, by kind, from names and lstat alone
// (no entry is read), so it is cheap enough to run on a big cache at any time.
import { walkCache, type CacheFileKind } from './cache-layout.js';
import { entryUseTimeMs } from './piece-cache.js';

export interface KindStats {
  files: number;
  bytes: number;
  /** Oldest use time as epoch milliseconds, null when empty: a piece entry's by entryUseTimeMs, any other file's mtime. */
  oldestUseMs: number | null;
  newestUseMs: number | null;
}

export interface CacheStats {
  cacheDir: string;
  kinds: Record<CacheFileKind, KindStats>;
  /** Piece entries per piece length. */
  pieceLengths: Record<string, { files: number; bytes: number }>;
  /** Symlinks and other non-regular files, which clean leaves alone. */
  skipped: number;
  total: { files: number; bytes: number };
}

export const KINDS: readonly CacheFileKind[] = ['piece', 'info', 'temp', 'lock', 'other'];

export async function cacheStats(cacheDir: string): Promise<CacheStats> {
  const empty = (): KindStats => ({ files: 0, bytes: 0, oldestUseMs: null, newestUseMs: null });
  const stats: CacheStats = {
    cacheDir,
    kinds: { piece: empty(), info: empty(), temp: empty(), lock: empty(), other: empty() },
    pieceLengths: {},
    skipped: 0,
    total: { files: 0, bytes: 0 },
  };
  await walkCache(cacheDir, {
    file: async (f) => {
      const k = stats.kinds[f.kind];
      k.files++;
      k.bytes += f.stat.size;
      const used = f.kind === 'piece' ? entryUseTimeMs(f.stat) : f.stat.mtimeMs;
      k.oldestUseMs = Math.min(k.oldestUseMs ?? Infinity, used);
      k.newestUseMs = Math.max(k.newestUseMs ?? -Infinity, used);
      if (f.kind === 'piece') {
        const pl = (stats.pieceLengths[f.segments[f.segments.length - 1]!] ??= { files: 0, bytes: 0 });
        pl.files++;
        pl.bytes += f.stat.size;
      }
      stats.total.files++;
      stats.total.bytes += f.stat.size;
      return false;
    },
    skipped: () => stats.skipped++,
  });
  return stats;
}
