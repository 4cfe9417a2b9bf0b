// One package downloading through the engine, shared by every request for
// it. Pieces come from peers (the engine, libtorrent, in the swarm's order:
// rarest first) and, only for what the swarm cannot give in time, from the
// mirror's HTTP (fallback-policy.ts), fetched here and handed to the engine
// so peers get them too. Every byte is counted by where it came from.
//
// `verified` is the prefix of the file whose pieces the engine has AND
// whose SHA-1 this process checked against the torrent on disk: only those
// bytes are ever sent to a client or moved into the store. Pieces checked
// out of order wait in `checked` until the prefix reaches them; the last
// pieces checked stay in memory, so a client keeping up is sent the very
// buffer that was hashed instead of reading the file a second time.
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { hasPiece, type BtEngine, type BtStatus } from '../core/bt-engine.js';
import { mirrorRuns, type FallbackMode } from './fallback-policy.js';
import type { PackageTorrent } from './lookup.js';
import { fetchPieces, pieceSize, type PieceFetch } from './mirror-pieces.js';
import { HeldPiece, PiecePool } from './piece-buffers.js';
import type { Store } from './store.js';

export type DownloadState = 'running' | 'complete' | 'failed';

/** Verified bytes kept in memory per download for clients that keep up (default). */
export const HELD_BYTES = 16 * 1024 * 1024;

/** Where a download's bytes came from, counted as they arrived. */
export interface Sources {
  /** Other peers of the swarm (the fleet). */
  peers: number;
  /** The mirror's own BitTorrent seeder (serve --seed): a peer at the mirror's address. */
  mirrorSeeder: number;
  /** The mirror's HTTP, piece by piece. */
  mirrorHttp: number;
  /** Of mirrorHttp, by why the mirror was asked (fallback-policy.ts), counted per finished request. */
  httpBy: Partial<Record<FallbackMode, number>>;
}

export interface DownloadOptions {
  /** The package's URL at the mirror: the HTTP fallback asks it for pieces. */
  url: URL;
  /** Whether any peer can be found (the torrent has trackers, or LPD/DHT is on). */
  peersPossible: boolean;
  heldBytes?: number;
  pollMs?: number;
  /** Requests to the mirror at once, how long without peers, and without peer bytes, before asking it. */
  mirrorSlots?: number;
  graceMs?: number;
  stallMs?: number;
  random?: () => number;
  now?: () => number;
}

export class SharedDownload {
  verified = 0;
  /** Pieces verified so far, in any order: progress, for stall detection. */
  verifiedPieces = 0;
  state: DownloadState = 'running';
  failure = '';
  readonly sources: Sources = { peers: 0, mirrorSeeder: 0, mirrorHttp: 0, httpBy: {} };
  /** The most peers/seeds the engine reported connected during the download. */
  peak = { connections: 0, seeders: 0 };
  /** How the mirror was last used (fallback-policy.ts), for the log. */
  mode: FallbackMode = 'peers';
  readonly path: string;
  private generation = 0;
  private waiters = new Set<() => void>();
  private fh: FileHandle | null = null;
  /** Pieces verified here, by index. */
  private checked: Uint8Array;
  /** Verified pieces by index, oldest first. */
  private held = new Map<number, HeldPiece>();
  private readonly pool: PiecePool;
  private fetches = new Map<number, { run: { first: number; count: number }; f: PieceFetch }>();
  private fetchedBytes = 0;
  /** Pieces fetched from the mirror and handed to the engine, until it has them. */
  private handed = new Set<number>();
  private startedAt = 0;
  private lastPeerBytesAt = 0;
  /** Ends the poll's wait early: a mirror request finished, so another may start now. */
  private wake: () => void = () => undefined;
  private readonly now: () => number;

  constructor(
    private readonly engine: BtEngine,
    private readonly store: Store,
    readonly t: PackageTorrent,
    private readonly o: DownloadOptions,
  ) {
    this.path = join(store.partialDir(t.infoHash), t.name);
    const heldBytes = o.heldBytes ?? HELD_BYTES;
    this.pool = new PiecePool(t.pieceLength, Math.max(1, Math.floor(heldBytes / t.pieceLength)));
    this.checked = new Uint8Array(this.pieceCount);
    this.now = o.now ?? Date.now;
  }

  get pieceCount(): number {
    return Math.ceil(this.t.length / this.t.pieceLength);
  }

  /** Hands the torrent to the engine; throws when the engine cannot take it (the caller goes direct). */
  async start(): Promise<void> {
    this.generation = this.engine.generation;
    await this.engine.add({ torrent: this.t.torrent, savePath: this.store.partialDir(this.t.infoHash) });
    this.startedAt = this.lastPeerBytesAt = this.now();
    void this.run();
  }

  /** The verified bytes from `at` to the end of its piece, when still in memory; release them once written. */
  heldFrom(at: number): { data: Buffer; release: () => void } | null {
    const i = Math.floor(at / this.t.pieceLength);
    return this.held.get(i)?.lease(at - i * this.t.pieceLength) ?? null;
  }

  /** Resolves at the next change of `verifiedPieces` or `state`. */
  changed(): Promise<void> {
    return new Promise((r) => this.waiters.add(r));
  }

  private notify(): void {
    const w = [...this.waiters];
    this.waiters.clear();
    for (const r of w) r();
  }

  private async run(): Promise<void> {
    const pollMs = this.o.pollMs ?? 50;
    try {
      while (this.state === 'running') {
        if (this.engine.generation !== this.generation) throw new Error('engine restarted');
        const s = await this.engine.status(this.t.infoHash, true);
        if (s.error) throw new Error(`engine: ${s.error}`);
        this.peak.connections = Math.max(this.peak.connections, s.peers);
        this.peak.seeders = Math.max(this.peak.seeders, s.seeds);
        this.count(s);
        const grew = await this.verify(s.have);
        if (this.verified === this.t.length) {
          // Into the store before the last bytes go out: a client's next request finds it there.
          await this.store.commit(this.t.infoHash, this.t.name, this.t.torrent);
          this.state = 'complete';
        } else {
          if (grew) this.notify();
          this.askMirror(s);
          await new Promise<void>((r) => {
            const timer = setTimeout(r, pollMs);
            this.wake = () => {
              clearTimeout(timer);
              r();
            };
          });
        }
      }
    } catch (err) {
      this.state = 'failed';
      this.failure = (err as Error).message;
      await this.engine.remove(this.t.infoHash);
    } finally {
      for (const { f } of this.fetches.values()) f.abort();
      await this.fh?.close().catch(() => undefined);
      this.fh = null;
      this.notify();
    }
  }

  /** Peer bytes (the engine counts each block as it arrives): the mirror's origin seeder (by its peer id), or the fleet. */
  private count(s: BtStatus): void {
    let all = 0;
    for (const n of Object.values(s.byIp)) all += n;
    const seeder = s.fromOrigin;
    const peers = all - seeder;
    if (seeder + peers > this.sources.mirrorSeeder + this.sources.peers) this.lastPeerBytesAt = this.now();
    this.sources.mirrorSeeder = seeder;
    this.sources.peers = peers;
    let inFlight = 0;
    for (const { f } of this.fetches.values()) inFlight += f.received;
    this.sources.mirrorHttp = this.fetchedBytes + inFlight;
  }

  private askMirror(s: BtStatus): void {
    const downloading = new Set(s.downloading ?? []);
    for (const i of this.handed) if (hasPiece(s.have, i)) this.handed.delete(i);
    const fetching = new Set<number>();
    for (const { run } of this.fetches.values()) for (let p = run.first; p < run.first + run.count; p++) fetching.add(p);
    const available = s.available ?? Buffer.alloc(0);
    const { mode, runs } = mirrorRuns({
      view: {
        pieces: this.pieceCount,
        have: (i) => hasPiece(s.have, i) || this.checked[i] === 1,
        busy: (i) => downloading.has(i) || fetching.has(i) || this.handed.has(i),
        available: (i) => hasPiece(available, i),
        peers: s.peers,
      },
      now: this.now(),
      startedAt: this.startedAt,
      lastPeerBytesAt: this.lastPeerBytesAt,
      peersPossible: this.o.peersPossible,
      inFlight: this.fetches.size,
      slots: this.o.mirrorSlots ?? 2,
      graceMs: this.o.graceMs ?? 1500,
      stallMs: this.o.stallMs ?? 3000,
      aloneRun: 4,
      random: this.o.random ?? Math.random,
    });
    if (runs.length) this.mode = mode;
    for (const run of runs) {
      const pieces = Array.from({ length: run.count }, (_, k) => run.first + k);
      void this.engine.reserve(this.t.infoHash, pieces).catch(() => undefined);
      const f = fetchPieces(this.o.url, this.t, run, 30_000, (index, data) => {
        // libtorrent checks it again, writes it, and offers it to peers.
        this.handed.add(index);
        void this.engine.addPiece(this.t.infoHash, index, data).catch(() => this.handed.delete(index));
      });
      this.fetches.set(run.first, { run, f });
      void f.done.finally(() => {
        this.fetches.delete(run.first);
        this.fetchedBytes += f.received;
        this.sources.httpBy[mode] = (this.sources.httpBy[mode] ?? 0) + f.received;
        // Pieces the mirror did not deliver whole go back to the peers.
        const missing = pieces.filter((p) => !this.handed.has(p));
        if (missing.length) void this.engine.release(this.t.infoHash, missing).catch(() => undefined);
        this.wake();
      });
    }
  }

  /** Checks the pieces the engine has that this process has not checked yet; true when any was. */
  private async verify(have: Buffer): Promise<boolean> {
    const { pieceLength, length } = this.t;
    let grew = false;
    for (let i = 0; i < this.pieceCount; i++) {
      if (this.checked[i] === 1 || !hasPiece(have, i)) continue;
      this.fh ??= await open(this.path, 'r');
      const n = pieceSize(this.t, i);
      const buf = this.pool.take();
      const { bytesRead } = await this.fh.read(buf, 0, n, i * pieceLength);
      const want = this.t.pieces.subarray(i * 20, i * 20 + 20);
      // Not on disk in full yet (the engine writes behind its check): look again at the next poll.
      if (bytesRead !== n || !createHash('sha1').update(buf.subarray(0, n)).digest().equals(want)) {
        this.pool.give(buf);
        continue;
      }
      this.checked[i] = 1;
      this.verifiedPieces++;
      grew = true;
      this.held.set(i, new HeldPiece(buf, n, this.pool));
      if (this.held.size * pieceLength > (this.o.heldBytes ?? HELD_BYTES)) {
        const [oldest, piece] = this.held.entries().next().value!;
        this.held.delete(oldest);
        piece.drop();
      }
    }
    while (this.verified < length && this.checked[this.verified / pieceLength] === 1) {
      this.verified = Math.min(length, this.verified + pieceLength);
    }
    return grew;
  }
}
