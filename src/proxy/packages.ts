// The BitTorrent side of the proxy: the engine, the store and the downloads
// in flight, one per info hash however many clients ask, plus the seeding
// limit aria2 has no option for (how many torrents seed at once).
import type { Aria2Engine } from '../core/aria2.js';
import { SharedDownload } from './download.js';
import type { PackageTorrent } from './lookup.js';
import type { Store } from './store.js';

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
    const dl = new SharedDownload(this.engine, this.store, t, webSeed);
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

  /** The store dropped a file: aria2 must stop seeding it. */
  forgetSeed(infoHash: string): void {
    const i = this.seeding.findIndex((s) => s.infoHash === infoHash);
    if (i >= 0) this.stopSeeding(this.seeding.splice(i, 1)[0]!);
  }
}
