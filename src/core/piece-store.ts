// Piece hashes for mirror files: from the piece cache when it has a valid
// entry, else hashed on the pool and stored. Concurrent requests for the same
// file share one hashing run.
import type { CacheWrites } from './cache-writes.js';
import { HASH_LEN } from './hash-task.js';
import type { HashPool } from './hasher.js';
import { PkgError } from './errors.js';
import { PieceCache, fullPieceCount, sameStamp, type FilePieces } from './piece-cache.js';
import { currentStampSync, type MirrorFile } from './root.js';
import { SharedRuns } from './shared-runs.js';

export interface PiecesResult {
  pieces: FilePieces;
  /** False when the entry came from the cache. */
  hashed: boolean;
}

export interface PieceStoreOptions {
  /** Called when an entry could not be written; the hashes are still returned. */
  onCacheError?: (rel: string, err: Error) => void;
  /**
   * The service's gate for cache writes (instead of onCacheError): skips
   * them while the cache cannot be written, and reports that once.
   */
  writes?: CacheWrites;
  /** Bytes of a file just hashed (serve's pkgtorrent_hash_bytes_total). */
  onHashed?: (bytes: number) => void;
}

export class PieceStore {
  private inflight = new SharedRuns<string, PiecesResult>();

  constructor(
    readonly cache: PieceCache | null,
    readonly pool: HashPool,
    private readonly opts: PieceStoreOptions = {},
  ) {}

  /** The valid cached entry for this file, or null. Cheap: one read, no hashing. */
  async lookup(file: MirrorFile, pieceLength: number): Promise<FilePieces | null> {
    return this.cache ? this.cache.get(file.rel, pieceLength, file) : null;
  }

  get(file: MirrorFile, pieceLength: number, onProgress?: (bytes: number) => void): Promise<PiecesResult> {
    return this.inflight.run(this.key(file, pieceLength), () => this.load(file, pieceLength, onProgress));
  }

  /** Hashes the file and stores the entry, without looking in the cache first: for a caller that just did. */
  hashAndStore(file: MirrorFile, pieceLength: number, onProgress?: (bytes: number) => void): Promise<PiecesResult> {
    return this.inflight.run(this.key(file, pieceLength), () => this.store(file, pieceLength, onProgress));
  }

  private key(file: MirrorFile, pieceLength: number): string {
    return `${pieceLength}\0${file.size}\0${file.mtimeNs}\0${file.abs}\0${file.rel}`;
  }

  private async load(file: MirrorFile, pieceLength: number, onProgress?: (bytes: number) => void): Promise<PiecesResult> {
    const hit = await this.lookup(file, pieceLength);
    if (hit) return { pieces: hit, hashed: false };
    return this.store(file, pieceLength, onProgress);
  }

  private async store(file: MirrorFile, pieceLength: number, onProgress?: (bytes: number) => void): Promise<PiecesResult> {
    const pieces = await hashFile(this.pool, file, pieceLength, onProgress);
    this.opts.onHashed?.(file.size);
    const cache = this.cache;
    if (cache && this.opts.writes) this.opts.writes.attempt(file.rel, () => cache.write(file.rel, pieces));
    else if (cache) {
      try {
        cache.write(file.rel, pieces);
      } catch (err) {
        this.opts.onCacheError?.(file.rel, err as Error);
      }
    }
    return { pieces, hashed: true };
  }
}

/**
 * Hashes one file as the piece cache stores it. The file must still have the
 * stamp it was resolved with once hashing ends, otherwise the hashes could
 * mix two versions of it and are thrown away.
 */
export async function hashFile(pool: HashPool, file: MirrorFile, pieceLength: number, onProgress?: (bytes: number) => void): Promise<FilePieces> {
  const full = fullPieceCount(file.size, pieceLength);
  const hasTail = file.size % pieceLength !== 0;
  const r =
    file.size === 0
      ? { pieces: Buffer.alloc(0), paddedTail: null }
      : await pool.hashStream([{ path: file.abs, name: file.rel, offset: 0, length: file.size }], pieceLength, {
          padTail: true,
          onProgress,
          within: file.root,
        });
  // In-line: a stat from the inode cache costs less than a thread-pool round trip.
  const after = currentStampSync(file.abs);
  if (!after || !sameStamp(after, file)) throw new PkgError('changed', `${file.rel}: changed while it was hashed`);
  return {
    pieceLength,
    size: file.size,
    mtimeNs: file.mtimeNs,
    full: r.pieces.subarray(0, full * HASH_LEN),
    tail: hasTail ? { padded: r.paddedTail!, plain: r.pieces.subarray(full * HASH_LEN) } : null,
  };
}
