// The origin seeder of `serve --seed`: every torrent the service hands out is
// also seeded over BitTorrent by the mirror itself, from the files under the
// root, so a fleet's peers take pieces from the mirror once and trade the
// rest among themselves (the web seed stays the fallback of each client).
//
// - Files are read where they are: the torrent's save path is the root (a
//   multi-file torrent's name is its first segment) or the file's directory
//   (a single file). The engine never writes there: every piece is trusted
//   present, because the service has just validated the files against the
//   piece cache it built the torrent from, so nothing is hashed again.
// - Bounded: at most `maxTorrents` at once (the least recently handed out
//   goes first), a torrent neither handed out nor uploaded from for `idleMs`
//   is dropped, and the engine bounds connections and upload rate.
// - A torrent whose files changed (by stat, against the stamps it was built
//   from) is dropped at the next tick: its pieces would no longer match.
import { dirname } from 'node:path';
import type { BtEngine } from '../core/bt-engine.js';
import type { InfoEntry } from '../core/info-entry.js';
import { sameStamp } from '../core/piece-cache.js';
import { currentStampSync } from '../core/root.js';

/** Longest a new torrent's first hand-out waits for the origin's first announce to be answered. */
const ANNOUNCE_WAIT_MS = 1000;

export interface SeederOptions {
  engine: BtEngine;
  /** Absolute path of a root-relative path (MirrorRoot.join). */
  pathOf: (rel: string) => string;
  maxTorrents: number;
  idleMs: number;
  /** How often idle and changed torrents are looked for (default a tenth of idleMs, 1 s to 60 s). */
  tickMs?: number;
  now?: () => number;
  log: (line: string) => void;
}

interface Seeded {
  entry: InfoEntry;
  /** Last handed out, and last seen uploading (engine's byte count, and when it last grew). */
  handedOut: number;
  uploaded: number;
  active: number;
  generation: number;
  /** Resolves once the engine has it (or failed to take it), and `settled` says it did. */
  added: Promise<boolean>;
  settled: boolean;
}

export class OriginSeeder {
  private seeded = new Map<string, Seeded>();
  private timer: NodeJS.Timeout;
  private readonly now: () => number;

  constructor(private readonly o: SeederOptions) {
    this.now = o.now ?? Date.now;
    const tick = o.tickMs ?? Math.min(60_000, Math.max(1000, o.idleMs / 10));
    this.timer = setInterval(() => void this.tick(), tick);
    this.timer.unref();
  }

  /** Torrents seeded now (info hashes). */
  get infoHashes(): string[] {
    return [...this.seeded.keys()];
  }

  /**
   * The service hands `entry` out as `torrent`: seed it (synchronous,
   * cheap for a torrent already seeded: a map lookup, and undefined). The engine ignores
   * the torrent's web seed (the seeder is the mirror) and announces to its
   * trackers. Resolves once the engine has it.
   */
  offer(entry: InfoEntry, torrent: Buffer, announced = false): Promise<boolean> | undefined {
    const ih = entry.infoHash.toString('hex');
    const now = this.now();
    const s = this.seeded.get(ih);
    if (s && s.generation === this.o.engine.generation) {
      s.handedOut = now;
      // Most recently handed out last: the map's order is the eviction order.
      this.seeded.delete(ih);
      this.seeded.set(ih, s);
      // Settled: nothing to wait for (the hot path of a cached GET stays synchronous).
      return s.settled ? undefined : s.added;
    }
    const seeded: Seeded = { entry, handedOut: now, uploaded: 0, active: now, generation: this.o.engine.generation, added: Promise.resolve(false), settled: false };
    seeded.added = this.add(ih, entry, torrent, announced).finally(() => (seeded.settled = true));
    const added = seeded.added;
    this.seeded.delete(ih);
    this.seeded.set(ih, seeded);
    while (this.seeded.size > this.o.maxTorrents) this.drop(this.seeded.keys().next().value!, 'most torrents seeded');
    return added;
  }

  /**
   * With `announced` (the torrent names trackers), resolves once a tracker
   * answered the origin (at most ANNOUNCE_WAIT_MS): a client given the
   * torrent then finds the origin in its first answer. The origin never
   * dials out, so a client that announced first would never meet it.
   */
  private async add(ih: string, e: InfoEntry, torrent: Buffer, announced: boolean): Promise<boolean> {
    const savePath = e.kind === 'single' ? dirname(this.o.pathOf(e.files[0]!.rel)) : this.o.pathOf('');
    try {
      await this.o.engine.add({ torrent, savePath, seed: true });
      for (const until = Date.now() + ANNOUNCE_WAIT_MS; announced && Date.now() < until; ) {
        if ((await this.o.engine.status(ih)).trackerPeers !== null) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      return true;
    } catch (err) {
      this.seeded.delete(ih);
      this.o.log(`seeder: cannot seed ${ih}: ${(err as Error).message}`);
      return false;
    }
  }

  private drop(ih: string, why: string): void {
    this.seeded.delete(ih);
    void this.o.engine.remove(ih);
    this.o.log(`seeder: stopped seeding ${ih} (${why})`);
  }

  /** Drops idle torrents, torrents whose files changed, and those an engine restart lost. */
  async tick(): Promise<void> {
    let list;
    try {
      list = new Map((await this.o.engine.list()).map((e) => [e.ih, e]));
    } catch {
      return; // The engine is restarting; the next tick looks again.
    }
    const now = this.now();
    for (const [ih, s] of [...this.seeded]) {
      if (s.generation !== this.o.engine.generation) {
        // Lost with an earlier engine process: handed out again, it is added again.
        this.seeded.delete(ih);
        continue;
      }
      const e = list.get(ih);
      if (e && e.uploaded > s.uploaded) {
        s.uploaded = e.uploaded;
        s.active = now;
      }
      if (now - Math.max(s.handedOut, s.active) >= this.o.idleMs) {
        this.drop(ih, 'idle');
        continue;
      }
      for (const f of s.entry.files) {
        const stamp = currentStampSync(this.o.pathOf(f.rel));
        if (!stamp || !sameStamp(stamp, f)) {
          this.drop(ih, `${f.rel} changed`);
          break;
        }
      }
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}
