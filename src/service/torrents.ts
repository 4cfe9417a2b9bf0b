// From resolved files to a service torrent: info cache first, else one build
// (shared by concurrent requests and processes) through the piece store,
// which hashes only files the piece cache lacks. The request path reads
// route -> handler -> Torrents.forFiles -> InfoCache.obtain -> build ->
// PieceMemo.get -> PieceStore.get -> HashPool.
import { BoundedMap } from '../core/bounded-map.js';
import { PkgError } from '../core/errors.js';
import type { InfoCache } from '../core/info-cache.js';
import { entryMatches, type InfoEntry } from '../core/info-entry.js';
import { sameStamp } from '../core/piece-cache.js';
import type { PieceMemo } from './piece-memo.js';
import { currentStampSync, type MirrorFile, type MirrorRoot } from '../core/root.js';
import { buildServiceInfo, checkServiceFiles, serviceTorrent, type ServiceKind } from '../core/service-layout.js';
import { SharedRuns } from '../core/shared-runs.js';

export interface TorrentsOptions {
  root: MirrorRoot;
  /** Piece hashes: memory, else the piece store (cache, else hashing). */
  pieces: PieceMemo;
  infoCache: InfoCache;
  pieceLength: number;
  serviceName: string;
  /** Most distinct builds at once in this process; more is 503. */
  queueLimit: number;
  /**
   * How long a cached entry's stat check holds for GETs, in ms; 0 checks on
   * every request. Stat'ing 40 packages costs far more than answering the
   * torrent, so a hot digest is checked at most this often: a replaced
   * package can yield its old torrent for at most this long. POSTs always
   * check (they stat every file anyway).
   */
  revalidateMs: number;
  /** One line per build, for the operator (and tests counting hashing). */
  log: (line: string) => void;
  /** The clock of check times, in ms (performance.now); a test moves it by hand. */
  now?: () => number;
}

/** The last check of an entry against the files, and the last torrent made of it. */
interface Checked {
  entry: InfoEntry;
  at: number;
  torrent?: { baseUrl: string; trackers: readonly string[]; value: Torrent };
}

/** A torrent ready to send. */
export interface Torrent {
  bytes: Buffer;
  infoHashHex: string;
}

/** Ready torrents kept in memory, in bytes (see pkgtorrent-service(8), CACHE LAYOUT). */
export const TORRENT_MEMORY_BYTES = 64 * 1024 * 1024;

export class Torrents {
  /**
   * Checks and ready torrents, bounded by the torrents' bytes (the entries
   * themselves are the info cache's, counted there).
   */
  private checked = new BoundedMap<string, Checked>(TORRENT_MEMORY_BYTES, (c) => 128 + (c.torrent?.value.bytes.length ?? 0));
  /** Stat checks scheduled for the end of this event-loop turn, by key. */
  private pending = new SharedRuns<string, InfoEntry | null>();
  /** When a request arrived or a check began, on one clock. */
  readonly now: () => number;

  constructor(private readonly o: TorrentsOptions) {
    this.now = o.now ?? (() => performance.now());
  }

  /** Same piece length and service name as this service: otherwise the entry describes another torrent. */
  private ours(e: InfoEntry): boolean {
    return e.pieceLength === this.o.pieceLength && e.serviceName === this.o.serviceName;
  }

  /** Are the entry's files still the ones it was built from? One stat each, nothing is read. */
  private unchanged(e: InfoEntry): boolean {
    return e.files.every((f) => {
      const now = currentStampSync(this.o.root.join(f.rel));
      return now !== null && sameStamp(now, f);
    });
  }

  /**
   * The cached entry for a key if it is still valid, without building: the
   * digest GET. A stale copy in memory is re-read from disk once, since
   * another process may have rebuilt it.
   *
   * Every answer rests on a stat check of the files made after the request
   * arrived (`arrivedAt`, on `now`): concurrent requests for a hot
   * digest share one check instead of 40 stats each, and none of them can be
   * answered from a check older than itself. `revalidateMs` (default 0) lets
   * an operator trade that for a window of staleness.
   */
  async lookup(key: string, arrivedAt = this.now()): Promise<InfoEntry | null> {
    const recent = this.checked.get(key);
    const fresh = recent && (recent.at >= arrivedAt || this.now() - recent.at < this.o.revalidateMs);
    if (fresh && this.o.infoCache.load(key) === recent.entry) return this.hit(key, recent.entry);
    return this.check(key);
  }

  /**
   * Joins the stat check of `key` that runs after this turn's requests have
   * been read (setImmediate runs after the poll phase). Every GET that joins
   * arrived before the check starts, so all may share its answer; under load
   * one check serves every connection that asked in the same turn.
   */
  private check(key: string): Promise<InfoEntry | null> {
    return this.pending.run(key, () => new Promise((resolve) => setImmediate(() => resolve(this.checkNow(key)))));
  }

  private checkNow(key: string): InfoEntry | null {
    // Taken before any stat: the answer holds for requests that arrived by now.
    const at = this.now();
    const c = this.o.infoCache;
    let e = c.load(key);
    if (e && this.ours(e) && this.unchanged(e)) return this.hit(key, e, at);
    // Another process may have rebuilt it since it was read.
    e = c.reload(key);
    if (e && this.ours(e) && this.unchanged(e)) return this.hit(key, e, at);
    this.checked.delete(key);
    return null;
  }

  /** Records a use; `checkedAt` when the files were checked, starting then. */
  private hit(key: string, e: InfoEntry, checkedAt?: number): InfoEntry {
    void this.o.infoCache.used(key);
    if (checkedAt !== undefined) {
      const prev = this.checked.get(key);
      this.checked.set(key, { entry: e, at: checkedAt, torrent: prev?.entry === e ? prev.torrent : undefined });
    }
    return e;
  }

  /**
   * The entry for exactly these files, built once if missing or stale.
   * `statedAt` is when the caller began stat'ing them (before resolving):
   * the entry is known current from then on, for the digest GETs after it.
   */
  async forFiles(key: string, files: readonly MirrorFile[], kind: ServiceKind, statedAt: number): Promise<InfoEntry> {
    checkServiceFiles(files, kind);
    const valid = (e: InfoEntry) => e.kind === kind && this.ours(e) && entryMatches(e, files);
    const c = this.o.infoCache;
    const mem = c.load(key);
    if (mem && valid(mem)) return this.hit(key, mem, statedAt);
    if (c.building >= this.o.queueLimit && !c.isBuilding(key)) {
      throw new PkgError('busy', 'too many torrents being built; try again shortly');
    }
    const entry = await c.obtain(key, valid, () => this.build(key, files, kind));
    return this.hit(key, entry, statedAt);
  }

  private async build(key: string, files: readonly MirrorFile[], kind: ServiceKind): Promise<InfoEntry> {
    const started = process.hrtime.bigint();
    const { info, hashed } = await buildServiceInfo(this.o.pieces, files, kind, this.o.pieceLength, this.o.serviceName);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    this.o.log(`built ${key}: ${files.length} file${files.length === 1 ? '' : 's'}, ${hashed} hashed, ${ms.toFixed(1)} ms`);
    return { ...info, kind, pieceLength: this.o.pieceLength, serviceName: this.o.serviceName };
  }

  /** The whole torrent for an entry: its info bytes spliced in, with this request's host and the current trackers. */
  torrent(key: string, e: InfoEntry, baseUrl: string, trackers: readonly string[]): Torrent {
    // Most requests for a digest come from one host name with the same
    // trackers (TrackerList keeps the same array until the file changes):
    // then the last torrent is reused as it is.
    const found = this.checked.get(key);
    const memo = found?.entry === e ? found : undefined;
    if (memo?.torrent && memo.torrent.baseUrl === baseUrl && memo.torrent.trackers === trackers) return memo.torrent.value;
    const value = { bytes: serviceTorrent(e, baseUrl, trackers), infoHashHex: e.infoHash.toString('hex') };
    if (memo) {
      memo.torrent = { baseUrl, trackers, value };
      // Set again, so the bound counts the torrent's bytes.
      this.checked.set(key, memo);
    }
    return value;
  }
}
