// Piece hashes the service has already used, kept in memory in front of the
// piece store. A cold POST of 200 cached packages otherwise reads and checks
// 200 piece-cache entries (about five file-system calls each); with the memo
// it reads none for packages this process has seen. Entries are keyed by
// path and checked against the file's current stamp, exactly like the disk
// entries, so a changed file is never answered from memory.
import { BoundedMap } from '../core/bounded-map.js';
import { sameStamp, type FilePieces } from '../core/piece-cache.js';
import type { PieceStore, PiecesResult } from '../core/piece-store.js';
import type { MirrorFile } from '../core/root.js';

export class PieceMemo {
  private entries: BoundedMap<string, FilePieces>;

  constructor(
    private readonly store: PieceStore,
    /** Most files remembered; about 100 bytes each for typical packages. */
    maxEntries = 100_000,
  ) {
    this.entries = new BoundedMap(maxEntries);
  }

  async get(file: MirrorFile, pieceLength: number, onProgress?: (bytes: number) => void): Promise<PiecesResult> {
    const key = `${pieceLength}\0${file.rel}`;
    const hit = this.entries.get(key);
    if (hit && sameStamp(hit, file)) {
      // Set again: the most recently used are kept.
      this.entries.set(key, hit);
      return { pieces: hit, hashed: false };
    }
    const r = await this.store.get(file, pieceLength, onProgress);
    this.entries.set(key, r.pieces);
    return r;
  }
}
