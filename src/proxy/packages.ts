// The BitTorrent side of the proxy: the engine, the store and the downloads
// in flight, one per info hash however many clients ask, plus the seeding
// limit aria2 has no option for (how many torrents seed at once), and the
// seeding again of stored packages when the proxy starts.
import type { Aria2Engine } from '../core/aria2.js';
import { SharedDownload } from './download.js';
import type { PackageTorrent } from './lookup.js';
import type { Store } from './store.js';

/** Polls of a re-added torrent that is neither checking nor seeding before it counts as damaged. */
const UNSETTLED_POLLS = 5;

export class Packages {
  private running = new Map<string, Promise<SharedDownload | null>>();
  /** gids of completed downloads aria2 still seeds, oldest first. */
  private seeding: Array<{ infoHash: string; gid: string; generation: number }> = [];
  /** Downloads started, for the log and for tests of sharing. */
  started = 0;

  constructor(
    readonly engine: Aria2Engine,
    readonly store: Store,
    private readonly seedMaxTorrents: number,
    private readonly heldBytes?: number,
  ) {}

  /** The download already running for this torrent, or a new one; null when the store cannot take it. */
  download(t: PackageTorrent, webSeed: string): Promise<SharedDownload | null> {
    const existing = this.running.get(t.infoHash);
    if (existing) return existing;
    // Registered before the first await: concurrent requests find this one.
    const starting = this.begin(t, webSeed);
    this.running.set(t.infoHash, starting);
    starting.then(
      (dl) => (dl ? void this.settle(dl) : this.running.delete(t.infoHash)),
      () => this.running.delete(t.infoHash),
    );
    return starting;
  }

  private async begin(t: PackageTorrent, webSeed: string): Promise<SharedDownload | null> {
    if (!(await this.store.makeRoom(t.length))) return null;
    this.forgetSeed(t.infoHash);
    await this.store.discardPartial(t.infoHash);
    const dl = new SharedDownload(this.engine, this.store, t, webSeed, this.heldBytes);
    await dl.start();
    this.started++;
    return dl;
  }

  private async settle(dl: SharedDownload): Promise<void> {
    while (dl.state === 'running') await dl.changed();
    // Later requests go to the store (complete) or start afresh (failed).
    this.running.delete(dl.t.infoHash);
    if (dl.state !== 'complete') return void this.store.discardPartial(dl.t.infoHash);
    this.seeding.push({ infoHash: dl.t.infoHash, gid: dl.gid, generation: this.engine.generation });
    while (this.seeding.length > this.seedMaxTorrents) this.stopSeeding(this.seeding.shift()!);
  }

  private stopSeeding(s: { gid: string; generation: number }): void {
    if (s.generation === this.engine.generation) void this.engine.remove(s.gid);
  }

  /**
   * Seeds stored packages again, after a restart of the proxy or of aria2: the newest
   * `seedMaxTorrents` whose seed time, counted from when they were stored,
   * is not over, for what is left of it. aria2 checks every piece of the
   * stored file against its torrent first (--check-integrity); a file
   * that fails is dropped from the store. One at a time, so the checks
   * never hold the download slots that package managers wait for.
   * Resolves with how many seed.
   */
  async reseed(seedTimeMs: number, now = Date.now()): Promise<number> {
    if (this.seedMaxTorrents <= 0) return 0; // (slice(-0) would keep them all)
    const stored = (await this.store.storedTorrents())
      .filter((e) => seedTimeMs - (now - e.completedAt) > 0)
      .sort((a, b) => a.completedAt - b.completedAt)
      .slice(-this.seedMaxTorrents);
    // What an earlier aria2 process seeded is gone with it.
    const generation = this.engine.generation;
    this.seeding = this.seeding.filter((s) => s.generation === generation);
    let seeding = 0;
    for (const { torrent: t, completedAt } of stored) {
      // aria2 restarted meanwhile: the restart's own pass takes over.
      if (this.engine.generation !== generation) break;
      const ih = t.infoHash;
      if (this.running.has(ih) || this.seeding.some((s) => s.infoHash === ih)) continue;
      const dir = await this.store.linkForSeeding(ih, t.name);
      const minutes = (seedTimeMs - (now - completedAt)) / 60_000;
      const gid = await this.engine.addTorrent(t.torrent, [], { dir, 'check-integrity': 'true', 'seed-time': minutes.toFixed(3) });
      const entry = { infoHash: ih, gid, generation: this.engine.generation };
      this.seeding.push(entry);
      while (this.seeding.length > this.seedMaxTorrents) this.stopSeeding(this.seeding.shift()!);
      const result = await this.checked(gid);
      if (result === 'seeding') seeding++;
      else if (result === 'damaged' && this.seeding.includes(entry)) {
        this.forgetSeed(ih);
        await this.store.remove(ih);
      }
    }
    return seeding;
  }

  /**
   * Waits for aria2's check of a re-added torrent. `gone`: it stopped for
   * another reason (an error, removed meanwhile, the engine restarted),
   * which says nothing about the file.
   */
  private async checked(gid: string): Promise<'seeding' | 'damaged' | 'gone'> {
    for (let unsettled = 0; unsettled < UNSETTLED_POLLS; ) {
      const s = await this.engine.tellStatus(gid).catch(() => null);
      if (!s || s.status === 'error' || s.status === 'removed') return 'gone';
      if (s.seeder || (s.status === 'complete' && s.completedLength === s.totalLength)) return 'seeding';
      if (s.verifying || s.status === 'waiting') unsettled = 0;
      else unsettled++;
      await new Promise((r) => setTimeout(r, 200));
    }
    return 'damaged';
  }

  /** The store dropped a file: aria2 must stop seeding it. */
  forgetSeed(infoHash: string): void {
    const i = this.seeding.findIndex((s) => s.infoHash === infoHash);
    if (i >= 0) this.stopSeeding(this.seeding.splice(i, 1)[0]!);
  }
}
