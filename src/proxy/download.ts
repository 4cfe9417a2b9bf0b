// A torrent downloading through the engine. Pieces come from peers (the
// engine, libtorrent, in the swarm's order: rarest first) and, only for what
// the swarm cannot give in time, from the mirror's HTTP (fallback-policy.ts),
// fetched here piece by piece (mirror-pieces.ts: where each piece is at the
// mirror) and handed to the engine so peers get them too. Every byte is
// counted by where it came from. PieceDownload is that core, shared by the
// proxy (SharedDownload: one package, a single-file torrent) and by
// `pkgtorrent fetch` (a set of files, a multi-file torrent of the service's
// layout).
//
// A piece counts as verified once the engine has it AND this process checked
// its SHA-1 against the torrent on disk: only such bytes are ever moved into
// the store or into place, or read back from the file for a client.
//
// The proxy's `verified` is the prefix of the file a client may be sent:
// pieces verified on disk, and pieces fetched from the mirror and checked
// in memory, which are sent from that memory before the engine wrote them.
// The last pieces checked stay in memory, so a client keeping up is sent
// the very buffer that was hashed instead of reading the file a second time.
//
// A download with no peer possible (no tracker, no LPD or DHT: the proxy
// can only ever ask the mirror) writes the mirror's pieces to the file
// itself: handing them to the engine would have libtorrent copy, hash and
// write every byte for peers that cannot come, which bounded bench:proxy.
import { constants } from 'node:fs';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { hasPiece, type BtEngine, type BtStatus } from '../core/bt-engine.js';
import { mirrorRuns, type FallbackMode } from './fallback-policy.js';
import type { PackageTorrent } from './lookup.js';
import { fetchPieces, oneRequest, pieceCount, pieceMatches, singleFileMap, type PieceFetch, type PieceMap, type PieceRun } from './mirror-pieces.js';
import { HeldPiece, PiecePool } from './piece-buffers.js';
import type { Store } from './store.js';

export type DownloadState = 'running' | 'complete' | 'failed';

/**
 * Bytes from peers that count as progress (see count()): more than a
 * trickling origin sends in a stall time (64 KiB/s x 3 s), less than a
 * healthy swarm sends in a fraction of a second. (A whole piece was
 * measured too strict: 6 of 8 clients took a piece from the mirror while
 * the swarm was starting.)
 */
const PEER_PROGRESS_BYTES = 256 * 1024;

/** Verified bytes kept in memory per download for clients that keep up (default). */
export const HELD_BYTES = 16 * 1024 * 1024;

/** Where a download's bytes came from, counted as they arrived. */
export interface Sources {
  /** Other peers of the swarm (the fleet). */
  peers: number;
  /** The mirror's own BitTorrent seeder (serve --seed), told by its peer id. */
  mirrorSeeder: number;
  /** The mirror's HTTP, piece by piece. */
  mirrorHttp: number;
  /** Of mirrorHttp, by why the mirror was asked (fallback-policy.ts), counted per finished request. */
  httpBy: Partial<Record<FallbackMode, number>>;
}

export interface PieceDownloadOptions {
  /** Whether any peer can be found (the torrent has trackers, or LPD/DHT is on). */
  peersPossible: boolean;
  /** Without peersPossible: write the mirror's pieces to the file here rather than through the engine (the proxy's single files). */
  writeAlone?: boolean;
  /** Peers come only from the torrent's trackers (LPD and DHT off): when they name none, nobody will come. */
  trackersOnly?: boolean;
  pollMs?: number;
  /** Requests to the mirror at once, how long without peers, and without peer bytes, before asking it. */
  mirrorSlots?: number;
  graceMs?: number;
  stallMs?: number;
  random?: () => number;
  now?: () => number;
}

export interface DownloadOptions extends PieceDownloadOptions {
  /** The package's URL at the mirror: the HTTP fallback asks it for pieces. */
  url: URL;
  heldBytes?: number;
}

/** One torrent through the engine, the mirror's HTTP filling in what peers do not give (see the top of this file). */
export class PieceDownload {
  /** Pieces verified so far, in any order: progress, for stall detection. */
  verifiedPieces = 0;
  state: DownloadState = 'running';
  failure = '';
  readonly sources: Sources = { peers: 0, mirrorSeeder: 0, mirrorHttp: 0, httpBy: {} };
  /** The most peers/seeds the engine reported connected during the download. */
  peak = { connections: 0, seeders: 0 };
  /**
   * Settles once the download stopped and every request to the mirror has
   * ended; `sources` then count every byte the mirror sent.
   */
  done: Promise<void> = Promise.resolve();
  private generation = 0;
  private waiters = new Set<() => void>();
  /** Open files by index in the map, for checking pieces. */
  /** Open files by index, as promises: pieces written at once must not each open the file. */
  private handles = new Map<number, Promise<FileHandle>>();
  /** Pieces verified here, by index. */
  protected readonly checked: Uint8Array;
  protected readonly pool: PiecePool;
  private fetches = new Map<number, { run: PieceRun; f: PieceFetch; settled: Promise<void> }>();
  private fetchedBytes = 0;
  /** Of the mirror's bytes, those of pieces whose SHA-1 did not match: of finished requests, and all. */
  private wastedDone = 0;
  private wastedBytes = 0;
  /** Pieces fetched from the mirror and handed to the engine, until it has them. */
  private handed = new Set<number>();
  private startedAt = 0;
  private lastPeerBytesAt = 0;
  /** When a status first showed the trackers' answer naming nobody but (perhaps) the asker. */
  private trackersAnsweredAt: number | undefined = undefined;
  /** Peer bytes when lastPeerBytesAt was set: progress is a piece's worth more than that. */
  private peerBytesMark = 0;
  /** Why the caller stopped the download, once it did. */
  private stopping = '';
  /** Ends the poll's wait early: a mirror request finished, so another may start now. */
  private wake: () => void = () => undefined;
  private readonly now: () => number;
  /** No peer can come: pieces from the mirror are written here, the engine only watches (see the top). */
  readonly writesItself: boolean;

  constructor(
    protected readonly engine: BtEngine,
    readonly infoHash: string,
    /** The torrent handed to the engine (its web seeds are ignored). */
    private readonly torrent: Buffer,
    readonly map: PieceMap,
    /** Where the engine saves it. */
    private readonly savePath: string,
    private readonly po: PieceDownloadOptions,
    /** Piece buffers kept for reuse. */
    poolKeep = 1,
  ) {
    this.pool = new PiecePool(map.pieceLength, poolKeep);
    this.checked = new Uint8Array(this.pieceCount);
    this.now = po.now ?? Date.now;
    this.writesItself = po.writeAlone === true && !po.peersPossible;
  }

  get pieceCount(): number {
    return pieceCount(this.map);
  }

  /** Whether piece `i` is verified. */
  has(i: number): boolean {
    return this.checked[i] === 1;
  }

  /**
   * Grows while bytes arrive that may still become verified pieces (the
   * mirror's bytes of a piece that failed its check are taken back): a
   * caller's measure of a stall.
   */
  get progress(): number {
    const s = this.sources;
    return this.verifiedPieces + s.peers + s.mirrorSeeder + s.mirrorHttp - this.wastedBytes;
  }

  /** Hands the torrent to the engine; throws when the engine cannot take it (the caller goes direct). */
  async start(): Promise<void> {
    this.generation = this.engine.generation;
    await this.engine.add({ torrent: this.torrent, savePath: this.savePath });
    this.startedAt = this.lastPeerBytesAt = this.now();
    this.done = this.run();
  }

  /** Ends a running download: it fails with `why` (the engine forgets the torrent). */
  stop(why: string): void {
    this.stopping ||= why;
    this.wake();
  }

  /** Resolves at the next change of `verifiedPieces` or `state`. */
  changed(): Promise<void> {
    return new Promise((r) => this.waiters.add(r));
  }

  protected notify(): void {
    const w = [...this.waiters];
    this.waiters.clear();
    for (const r of w) r();
  }

  /** Takes the buffer of a piece just verified (its bytes: [0, n)); without it the buffer goes back to the pool. */
  protected keep?(index: number, buf: Buffer, n: number): void;

  /** After each round of checks. */
  protected checkedRound?(): void;

  /**
   * A piece the mirror's HTTP gave, its SHA-1 checked, before the engine
   * has it on disk. `data` is also on its way to the engine: never reused.
   */
  protected fetched?(index: number, data: Buffer): void;

  /** Every piece is verified: what must happen before the download counts as complete. */
  protected completing?(): Promise<void>;

  private async run(): Promise<void> {
    const pollMs = this.po.pollMs ?? 50;
    try {
      while (this.state === 'running') {
        if (this.stopping) throw new Error(this.stopping);
        if (this.engine.generation !== this.generation) throw new Error('engine restarted');
        const s = await this.engine.status(this.infoHash, true);
        if (s.error) throw new Error(`engine: ${s.error}`);
        this.peak.connections = Math.max(this.peak.connections, s.peers);
        this.peak.seeders = Math.max(this.peak.seeders, s.seeds);
        this.count(s);
        const grew = await this.verify(s.have);
        if (this.verifiedPieces === this.pieceCount) {
          await this.completing?.();
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
      await this.engine.remove(this.infoHash);
    } finally {
      for (const { f } of this.fetches.values()) f.abort();
      for (const fh of this.handles.values()) await fh.then((h) => h.close()).catch(() => undefined);
      this.handles.clear();
      this.notify();
    }
    // The bytes of requests cut off above count too: the mirror sent them.
    await Promise.all([...this.fetches.values()].map((x) => x.settled));
    this.sources.mirrorHttp = this.fetchedBytes;
  }

  /** Peer bytes (the engine counts each block as it arrives): the mirror's origin seeder (by its peer id), or the fleet. */
  private count(s: BtStatus): void {
    // An answer naming two peers or more names someone besides the asker: wait for them as usual.
    if (this.trackersAnsweredAt === undefined && s.trackerPeers !== null && s.trackerPeers <= 1) this.trackersAnsweredAt = this.now();
    let all = 0;
    for (const n of Object.values(s.byIp)) all += n;
    const seeder = s.fromOrigin;
    const peers = all - seeder;
    // Progress from peers is PEER_PROGRESS_BYTES at a time (or the last
    // ones): a peer that trickles (an origin sparing its uplink at 64 KiB/s,
    // a slow link) must not hold off the mirror's HTTP forever.
    if (seeder + peers - this.peerBytesMark >= Math.min(PEER_PROGRESS_BYTES, this.map.length - this.peerBytesMark)) {
      this.peerBytesMark = seeder + peers;
      this.lastPeerBytesAt = this.now();
    }
    this.sources.mirrorSeeder = seeder;
    this.sources.peers = peers;
    let inFlight = 0;
    let wasted = 0;
    for (const { f } of this.fetches.values()) {
      inFlight += f.received;
      wasted += f.wasted;
    }
    this.sources.mirrorHttp = this.fetchedBytes + inFlight;
    this.wastedBytes = wasted + this.wastedDone;
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
        busy: (i) => fetching.has(i) || this.handed.has(i),
        downloading: (i) => downloading.has(i),
        available: (i) => hasPiece(available, i),
        peers: s.peers,
      },
      now: this.now(),
      startedAt: this.startedAt,
      lastPeerBytesAt: this.lastPeerBytesAt,
      peersPossible: this.po.peersPossible,
      trackersAnsweredAt: this.po.trackersOnly === true ? this.trackersAnsweredAt : undefined,
      inFlight: this.fetches.size,
      slots: this.po.mirrorSlots ?? 2,
      graceMs: this.po.graceMs ?? 1500,
      stallMs: this.po.stallMs ?? 3000,
      aloneRun: 4,
      random: this.po.random ?? Math.random,
    });
    for (const wanted of runs) {
      // One request is one file's bytes: the rest of a run across files waits for the next round.
      const run = oneRequest(this.map, wanted);
      const pieces = Array.from({ length: run.count }, (_, k) => run.first + k);
      void this.engine.reserve(this.infoHash, pieces).catch(() => undefined);
      const f = fetchPieces(this.map, run, 30_000, (index, data) => {
        this.handed.add(index);
        // Alone for good: into the file here. Else libtorrent checks it
        // again, writes it, and offers it to peers.
        if (this.writesItself) void this.writePiece(index, data);
        else void this.engine.addPiece(this.infoHash, index, data).catch(() => this.handed.delete(index));
        // Verified here already: clients need not wait for the engine's write.
        if (this.checked[index] !== 1) this.fetched?.(index, data);
      });
      const settled = f.done.finally(() => {
        this.fetches.delete(run.first);
        this.fetchedBytes += f.received;
        this.wastedDone += f.wasted;
        this.sources.httpBy[mode] = (this.sources.httpBy[mode] ?? 0) + f.received;
        // Pieces the mirror did not deliver whole go back to the peers.
        const missing = pieces.filter((p) => !this.handed.has(p));
        if (missing.length) void this.engine.release(this.infoHash, missing).catch(() => undefined);
        this.wake();
      });
      this.fetches.set(run.first, { run, f, settled });
    }
  }

  /** A piece fetched and checked, written into its file by this process (writesItself): verified on disk once written. */
  private async writePiece(index: number, data: Buffer): Promise<void> {
    // Stopped or complete: its files are closed (and may be in the store) for good.
    if (this.state !== 'running') return;
    const span = this.map.span(index);
    try {
      const fh = await this.file(span.file);
      await fh.write(data, 0, span.length, span.offset);
    } catch (err) {
      this.stop(`cannot write ${this.map.files[span.file]!.path}: ${(err as Error).message}`);
      return;
    }
    if (this.checked[index] === 1) return;
    this.checked[index] = 1;
    this.verifiedPieces++;
    this.checkedRound?.();
    this.notify();
    // The poll sees the download complete at once rather than at its next tick.
    this.wake();
  }

  /** The open file of index `file` in the map (created and writable when this process writes it). */
  private file(file: number): Promise<FileHandle> {
    let fh = this.handles.get(file);
    if (!fh) {
      const path = this.map.files[file]!.path;
      fh = (async () => {
        if (this.writesItself) await mkdir(dirname(path), { recursive: true });
        return open(path, this.writesItself ? constants.O_RDWR | constants.O_CREAT : 'r', 0o644);
      })();
      // A failed open is tried again next time (the engine may not have created the file yet).
      fh.catch(() => this.handles.delete(file));
      this.handles.set(file, fh);
    }
    return fh;
  }

  /** Checks the pieces the engine has that this process has not checked yet; true when any was. */
  private async verify(have: Buffer): Promise<boolean> {
    let grew = false;
    for (let i = 0; i < this.pieceCount; i++) {
      if (this.checked[i] === 1 || !hasPiece(have, i)) continue;
      const span = this.map.span(i);
      const fh = await this.file(span.file);
      const n = span.length + span.zeroTail;
      const buf = this.pool.take();
      const { bytesRead } = await fh.read(buf, 0, span.length, span.offset);
      // Padding (BEP 47): zeros the engine never writes.
      buf.fill(0, span.length, n);
      // Not on disk in full yet (the engine writes behind its check): look again at the next poll.
      if (bytesRead !== span.length || !pieceMatches(this.map, i, buf.subarray(0, n))) {
        this.pool.give(buf);
        continue;
      }
      this.checked[i] = 1;
      this.verifiedPieces++;
      grew = true;
      if (this.keep) this.keep(i, buf, n);
      else this.pool.give(buf);
    }
    this.checkedRound?.();
    return grew;
  }
}

/** One package downloading for the proxy, shared by every request for it; into the store once complete. */
export class SharedDownload extends PieceDownload {
  /**
   * The verified prefix clients may be sent: pieces checked on disk, or
   * fetched from the mirror and checked in memory (those may be read only
   * while held; see readable()).
   */
  verified = 0;
  readonly path: string;
  /** Verified pieces by index, oldest first. */
  private held = new Map<number, HeldPiece>();
  /** Pieces checked in memory as they came from the mirror's HTTP (the engine may not have written them yet). */
  private inMemory: Uint8Array;

  constructor(
    engine: BtEngine,
    private readonly store: Store,
    readonly t: PackageTorrent,
    private readonly o: DownloadOptions,
  ) {
    const path = join(store.partialDir(t.infoHash), t.name);
    const heldBytes = o.heldBytes ?? HELD_BYTES;
    super(engine, t.infoHash, t.torrent, singleFileMap(t, o.url, path), store.partialDir(t.infoHash), { ...o, writeAlone: true }, Math.max(1, Math.floor(heldBytes / t.pieceLength)));
    this.path = path;
    this.inMemory = new Uint8Array(this.pieceCount);
  }

  /** The verified bytes from `at` to the end of its piece, when still in memory; release them once written. */
  heldFrom(at: number): { data: Buffer; release: () => void } | null {
    const i = Math.floor(at / this.t.pieceLength);
    return this.held.get(i)?.lease(at - i * this.t.pieceLength) ?? null;
  }

  /** Whether the verified byte at `at` can be read from the file (its piece checked on disk), when not held. */
  onDisk(at: number): boolean {
    return this.has(Math.floor(at / this.t.pieceLength));
  }

  protected override keep(i: number, buf: Buffer, n: number): void {
    // Held already from the mirror's HTTP: the same bytes, checked again on disk for the store.
    if (this.held.has(i)) return this.pool.give(buf);
    this.hold(i, new HeldPiece(buf, n, this.pool));
  }

  protected override fetched(i: number, data: Buffer): void {
    if (this.held.has(i)) return;
    this.inMemory[i] = 1;
    this.hold(i, new HeldPiece(data, data.length, null));
    this.checkedRound();
    this.notify();
  }

  private hold(i: number, piece: HeldPiece): void {
    this.held.set(i, piece);
    if (this.held.size * this.t.pieceLength > (this.o.heldBytes ?? HELD_BYTES)) {
      const [oldest, dropped] = this.held.entries().next().value!;
      this.held.delete(oldest);
      dropped.drop();
    }
  }

  protected override checkedRound(): void {
    const { pieceLength, length } = this.t;
    for (let i = this.verified / pieceLength; this.verified < length && (this.checked[i] === 1 || this.inMemory[i] === 1); i++) {
      this.verified = Math.min(length, this.verified + pieceLength);
    }
  }

  /** Into the store before the last bytes go out: a client's next request finds it there. */
  protected override async completing(): Promise<void> {
    await this.store.commit(this.t.infoHash, this.t.name, this.t.torrent);
  }
}
