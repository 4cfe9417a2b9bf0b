// The BitTorrent side of the proxy: the engine, the store and the downloads
// in flight, one per info hash however many clients ask; the seeding of
// completed packages within the seeding limits (torrents at once, seed
// time, upload ratio); and the seeding again of stored packages when the
// proxy or its engine starts.
import type { BtEngine } from '../core/bt-engine.js';
import { SharedDownload, type DownloadOptions } from './download.js';
import type { PackageTorrent } from './lookup.js';
import type { Store } from './store.js';

/** Polls of a re-added torrent that is neither checking nor seeding before it counts as damaged. */
const UNSETTLED_POLLS = 5;

export interface SeedLimits {
  maxTorrents: number;
  timeMs: number;
  /** Upload ratio after which a package stops seeding (0: only the time counts). */
  ratio: number;
}

interface Seeding {
  infoHash: string;
  length: number;
  generation: number;
  /** When seeding ends (seed time left). */
  until: number;
}

export class Packages {
  private running = new Map<string, Promise<SharedDownload | null>>();
  /** Completed downloads the engine still seeds, oldest first. */
  private seeding: Seeding[] = [];
  private timer: NodeJS.Timeout;
  /** Downloads started, for the log and for tests of sharing. */
  started = 0;

  constructor(
    readonly engine: BtEngine,
    readonly store: Store,
    private readonly limits: SeedLimits,
    private readonly now: () => number = Date.now,
  ) {
    this.timer = setInterval(() => void this.enforce(), 5000);
    this.timer.unref();
  }

  /** Completed packages the engine seeds now (within the seeding limits). */
  get seedingNow(): number {
    return this.seeding.filter((s) => s.generation === this.engine.generation).length;
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** The download already running for this torrent, or a new one; null when the store cannot take it. */
  download(t: PackageTorrent, o: DownloadOptions): Promise<SharedDownload | null> {
    const existing = this.running.get(t.infoHash);
    if (existing) return existing;
    // Registered before the first await: concurrent requests find this one.
    const starting = this.begin(t, o);
    this.running.set(t.infoHash, starting);
    starting.then(
      (dl) => (dl ? void this.settle(dl) : this.running.delete(t.infoHash)),
      () => this.running.delete(t.infoHash),
    );
    return starting;
  }

  private async begin(t: PackageTorrent, o: DownloadOptions): Promise<SharedDownload | null> {
    if (!(await this.store.makeRoom(t.length))) return null;
    this.forgetSeed(t.infoHash);
    await this.store.discardPartial(t.infoHash);
    const dl = new SharedDownload(this.engine, this.store, t, o);
    await dl.start();
    this.started++;
    return dl;
  }

  private async settle(dl: SharedDownload): Promise<void> {
    while (dl.state === 'running') await dl.changed();
    // Later requests go to the store (complete) or start afresh (failed).
    this.running.delete(dl.t.infoHash);
    if (dl.state !== 'complete') return void this.store.discardPartial(dl.t.infoHash);
    if (dl.writesItself) {
      // Its pieces were written here, not through the engine, which holds
      // none: it seeds the file as it is, every piece checked already.
      await this.engine.remove(dl.t.infoHash);
      await this.engine.add({ torrent: dl.t.torrent, savePath: this.store.partialDir(dl.t.infoHash), seed: true }).catch(() => undefined);
    }
    this.startSeeding(dl.t.infoHash, dl.t.length, this.limits.timeMs);
  }

  private startSeeding(infoHash: string, length: number, timeMs: number): Seeding {
    const s = { infoHash, length, generation: this.engine.generation, until: this.now() + timeMs };
    this.seeding.push(s);
    while (this.seeding.length > this.limits.maxTorrents) this.stopSeeding(this.seeding.shift()!);
    return s;
  }

  private stopSeeding(s: Seeding): void {
    if (s.generation === this.engine.generation) void this.engine.remove(s.infoHash);
  }

  /** Ends seeding past its time or ratio. */
  async enforce(): Promise<void> {
    const now = this.now();
    let uploaded = new Map<string, number>();
    if (this.limits.ratio > 0) {
      try {
        uploaded = new Map((await this.engine.list()).map((e) => [e.ih, e.uploaded]));
      } catch {
        return;
      }
    }
    for (const s of [...this.seeding]) {
      const ratioMet = this.limits.ratio > 0 && (uploaded.get(s.infoHash) ?? 0) >= this.limits.ratio * s.length;
      if (now >= s.until || ratioMet || s.generation !== this.engine.generation) {
        this.seeding.splice(this.seeding.indexOf(s), 1);
        this.stopSeeding(s);
      }
    }
  }

  /**
   * Seeds stored packages again, after a restart of the proxy or of the
   * engine: the newest `maxTorrents` whose seed time, counted from when they
   * were stored, is not over, for what is left of it. The engine checks
   * every piece of the stored file against its torrent first; a file that
   * fails is dropped from the store. One at a time, so the checks never
   * compete with the downloads package managers wait for.
   * Resolves with how many seed.
   */
  async reseed(now = this.now()): Promise<number> {
    if (this.limits.maxTorrents <= 0) return 0; // (slice(-0) would keep them all)
    const seedTimeMs = this.limits.timeMs;
    const stored = (await this.store.storedTorrents())
      .filter((e) => seedTimeMs - (now - e.completedAt) > 0)
      .sort((a, b) => a.completedAt - b.completedAt)
      .slice(-this.limits.maxTorrents);
    // What an earlier engine process seeded is gone with it.
    const generation = this.engine.generation;
    this.seeding = this.seeding.filter((s) => s.generation === generation);
    let seeding = 0;
    for (const { torrent: t, completedAt } of stored) {
      // The engine restarted meanwhile: the restart's own pass takes over.
      if (this.engine.generation !== generation) break;
      const ih = t.infoHash;
      if (this.running.has(ih) || this.seeding.some((s) => s.infoHash === ih)) continue;
      const dir = await this.store.linkForSeeding(ih, t.name);
      await this.engine.add({ torrent: t.torrent, savePath: dir });
      const entry = this.startSeeding(ih, t.length, seedTimeMs - (now - completedAt));
      const result = await this.checked(ih);
      if (result === 'seeding') seeding++;
      else if (result === 'damaged' && this.seeding.includes(entry)) {
        this.forgetSeed(ih);
        await this.store.remove(ih);
      }
    }
    return seeding;
  }

  /**
   * Waits for the engine's check of a re-added torrent. `gone`: it stopped
   * for another reason (removed meanwhile, the engine restarted), which says
   * nothing about the file.
   */
  private async checked(ih: string): Promise<'seeding' | 'damaged' | 'gone'> {
    for (let unsettled = 0; unsettled < UNSETTLED_POLLS; ) {
      const s = await this.engine.status(ih).catch(() => null);
      if (!s) return 'gone';
      if (s.seeding) return 'seeding';
      if (s.error) return 'damaged';
      if (s.state.startsWith('checking')) unsettled = 0;
      else unsettled++;
      await new Promise((r) => setTimeout(r, 200));
    }
    return 'damaged';
  }

  /** The store dropped a file: the engine must stop seeding it. */
  forgetSeed(infoHash: string): void {
    const i = this.seeding.findIndex((s) => s.infoHash === infoHash);
    if (i >= 0) this.stopSeeding(this.seeding.splice(i, 1)[0]!);
  }
}
