// One package downloading through the engine, shared by every request for
// it. `verified` is the prefix of the file whose pieces aria2 reports done
// AND whose SHA-1 this process checked against the torrent on disk: only
// those bytes are ever sent to a client or moved into the store. The last
// pieces checked stay in memory, so a client keeping up is sent the very
// buffer that was hashed instead of reading the file a second time.
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { verifiedPrefixPieces, type Aria2Engine } from '../core/aria2.js';
import type { PackageTorrent } from './lookup.js';
import { HeldPiece, PiecePool } from './piece-buffers.js';
import type { Store } from './store.js';

export type DownloadState = 'running' | 'complete' | 'failed';

/** Verified bytes kept in memory per download for clients that keep up (default). */
export const HELD_BYTES = 16 * 1024 * 1024;

export class SharedDownload {
  verified = 0;
  state: DownloadState = 'running';
  failure = '';
  gid = '';
  /** The most peers/seeders aria2 reported connected during the download. */
  peak = { connections: 0, seeders: 0 };
  readonly path: string;
  private generation = 0;
  private waiters = new Set<() => void>();
  private fh: FileHandle | null = null;
  /** Verified pieces by index, oldest first. */
  private held = new Map<number, HeldPiece>();
  private readonly pool: PiecePool;

  constructor(
    private readonly engine: Aria2Engine,
    private readonly store: Store,
    readonly t: PackageTorrent,
    private readonly webSeed: string,
    private readonly heldBytes = HELD_BYTES,
    private readonly pollMs = 50,
  ) {
    this.path = join(store.partialDir(t.infoHash), t.name);
    const window = Math.max(1, Math.floor(heldBytes / t.pieceLength));
    this.pool = new PiecePool(t.pieceLength, window);
  }

  /** Hands the torrent to aria2; throws when the engine cannot take it (the caller goes direct). */
  async start(): Promise<void> {
    this.generation = this.engine.generation;
    this.gid = await this.engine.addTorrent(this.t.torrent, [this.webSeed], { dir: this.store.partialDir(this.t.infoHash) });
    void this.run();
  }

  /** The verified bytes from `at` to the end of its piece, when still in memory; release them once written. */
  heldFrom(at: number): { data: Buffer; release: () => void } | null {
    const i = Math.floor(at / this.t.pieceLength);
    return this.held.get(i)?.lease(at - i * this.t.pieceLength) ?? null;
  }

  /** Resolves at the next change of `verified` or `state`. */
  changed(): Promise<void> {
    return new Promise((r) => this.waiters.add(r));
  }

  private notify(): void {
    const w = [...this.waiters];
    this.waiters.clear();
    for (const r of w) r();
  }

  private async run(): Promise<void> {
    try {
      while (this.state === 'running') {
        if (this.engine.generation !== this.generation) throw new Error('engine restarted');
        const s = await this.engine.tellStatus(this.gid);
        if (s.status === 'error' || s.status === 'removed') throw new Error(`aria2: ${s.errorMessage || s.status}`);
        this.peak.connections = Math.max(this.peak.connections, s.connections);
        this.peak.seeders = Math.max(this.peak.seeders, s.numSeeders);
        const grew = await this.verifyUpTo(verifiedPrefixPieces(s.bitfield));
        if (this.verified === this.t.length) {
          // Into the store before the last bytes go out: a client's next request finds it there.
          await this.store.commit(this.t.infoHash, this.t.name, this.t.torrent);
          this.state = 'complete';
        } else {
          if (grew) this.notify();
          await new Promise((r) => setTimeout(r, this.pollMs));
        }
      }
    } catch (err) {
      this.state = 'failed';
      this.failure = (err as Error).message;
      await this.engine.remove(this.gid).catch(() => undefined);
    } finally {
      await this.fh?.close().catch(() => undefined);
      this.fh = null;
      this.notify();
    }
  }

  /** Checks pieces up to `pieces` (aria2's verified prefix); true when `verified` grew. */
  private async verifyUpTo(pieces: number): Promise<boolean> {
    const { pieceLength, length } = this.t;
    const end = Math.min(length, pieces * pieceLength);
    const before = this.verified;
    if (end <= this.verified) return false;
    this.fh ??= await open(this.path, 'r');
    while (this.verified < end) {
      const i = this.verified / pieceLength;
      const n = Math.min(pieceLength, length - this.verified);
      const buf = this.pool.take();
      const { bytesRead } = await this.fh.read(buf, 0, n, this.verified);
      const want = this.t.pieces.subarray(i * 20, i * 20 + 20);
      // A piece not yet on disk in full: look again at the next poll.
      if (bytesRead !== n || !createHash('sha1').update(buf.subarray(0, n)).digest().equals(want)) {
        this.pool.give(buf);
        break;
      }
      this.held.set(i, new HeldPiece(buf, n, this.pool));
      if (this.held.size * pieceLength > this.heldBytes) {
        const [oldest, piece] = this.held.entries().next().value!;
        this.held.delete(oldest);
        piece.drop();
      }
      this.verified += n;
      // Clients go on at once, not after the whole batch (after a split
      // download's second half arrives that is many pieces); the last piece
      // waits for the store (run).
      if (this.verified < length) this.notify();
    }
    return this.verified > before;
  }
}
