// From resolved files to a service torrent: info cache first, else one build
// (shared by concurrent requests and processes) through the piece store,
// which hashes only files the piece cache lacks. The request path reads
// route -> handler -> Torrents.forFiles -> InfoCache.obtain -> build ->
// PieceMemo.get -> PieceStore.get -> HashPool.
import { BoundedMap } from '../core/bounded-map.js';
import { PkgError } from '../core/errors.js';
import type { InfoCache, ReadyTorrent } from '../core/info-cache.js';
import { entryMatches, type InfoEntry } from '../core/info-entry.js';
import { sameStamp, type FileStamp } from '../core/piece-cache.js';
import type { PieceMemo } from './piece-memo.js';
import { currentStampSync, type MirrorFile, type MirrorRoot } from '../core/root.js';
import { buildServiceInfo, checkServiceFiles, infoHasSettings, serviceTorrent, type InfoSettings, type ServiceKind } from '../core/service-layout.js';
import { SharedRuns } from '../core/shared-runs.js';

export interface TorrentsOptions {
  root: MirrorRoot;
  /** Piece hashes: memory, else the piece store (cache, else hashing). */
  pieces: PieceMemo;
  /**
   * Entries, and the one record of when each entry's files were last found
   * unchanged: its clock and revalidation window decide every GET here.
   * Stat'ing 40 packages costs far more than answering the torrent, so a hot
   * digest is checked at most once per window: a replaced package can yield
   * its old torrent for at most that long. POSTs always check (they stat
   * every file anyway).
   */
  infoCache: InfoCache;
  pieceLength: number;
  serviceName: string;
  /**
   * The private flag and source string every info dictionary gets (the
   * private and source settings). An entry built with other values is no
   * entry of this service: a miss, as one of another piece length.
   */
  infoSettings?: InfoSettings;
  /** Base URLs of further web seeds, after the mirror's own in url-list (the web-seeds setting). */
  webSeeds?: readonly string[];
  /** Most distinct builds at once in this process; more is 503. */
  queueLimit: number;
  /** One line per build, for the operator (and tests counting hashing). */
  log: (line: string) => void;
}

/** A torrent ready to send. */
export type Torrent = ReadyTorrent;

/** A file's stamp as last stat'ed (null: gone), and when, on the info cache's clock. */
interface Stated {
  rel: string;
  stamp: FileStamp | null;
  at: number;
}

/** File stamps kept for the revalidation window, in bytes (see pkgtorrent-service(8), CACHE LAYOUT). */
export const STAMP_MEMORY_BYTES = 16 * 1024 * 1024;

export class Torrents {
  /** The files' stamps as last stat'ed, for the revalidation window only. */
  private stamps = new BoundedMap<string, Stated>(STAMP_MEMORY_BYTES, (s) => 128 + 2 * s.rel.length);
  /** Stat checks scheduled for the end of this event-loop turn, by key (strict mode). */
  private pending = new SharedRuns<string, InfoEntry | null>();
  /** When a request arrived or a check began, on the info cache's clock. */
  readonly now: () => number;

  constructor(private readonly o: TorrentsOptions) {
    this.now = o.infoCache.now;
  }

  /**
   * Same piece length, service name, private flag and source as this
   * service: otherwise the entry describes another torrent, which is never
   * answered (a digest GET gets 412, anything else rebuilds it, from the
   * piece cache).
   */
  private ours(e: InfoEntry): boolean {
    return e.pieceLength === this.o.pieceLength && e.serviceName === this.o.serviceName && infoHasSettings(e.bytes, this.o.infoSettings ?? {});
  }

  /**
   * Whether the entry's files are still the ones it was built from, and if
   * so the time of the oldest stat that says so (null: one changed or is
   * gone). One stat each, nothing is read; inside a revalidation window a
   * file stat'ed less than the window ago (for this entry or another that
   * shares it) is not stat'ed again, as nginx's open_file_cache does, so
   * digests spread over a few thousand packages cost a few thousand stats
   * per window, not four per request.
   */
  private unchanged(e: InfoEntry, now: number): number | null {
    const window = this.o.infoCache.revalidateMs;
    let oldest = now;
    for (const f of e.files) {
      let s = window > 0 ? this.stamps.get(f.rel) : undefined;
      if (s === undefined || now - s.at >= window) {
        s = { rel: f.rel, stamp: currentStampSync(this.o.root.join(f.rel)), at: now };
        if (window > 0) this.stamps.set(f.rel, s);
      }
      if (s.stamp === null || !sameStamp(s.stamp, f)) return null;
      if (s.at < oldest) oldest = s.at;
    }
    return oldest;
  }

  /**
   * Lookups of the info cache (an entry for the request, valid or not) and
   * of the piece cache (per file of a build: its pieces cached, or hashed),
   * for serve's metrics.
   */
  readonly stats = { infoHits: 0, infoMisses: 0, filesCached: 0, filesHashed: 0 };

  /** The cached entry for a key when a check of its files holds for a request that arrived at `arrivedAt`; null: check. */
  private fresh(key: string, arrivedAt: number): InfoEntry | null {
    const e = this.o.infoCache.fresh(key, arrivedAt);
    // Memory holds only entries this service checked, but an entry of other
    // settings must never be answered, whoever put it there.
    if (!e || !this.ours(e)) return null;
    void this.o.infoCache.used(key);
    return e;
  }

  /**
   * The cached entry for a key if it is still valid, without building: the
   * digest GET. A stale copy in memory is re-read from disk once, since
   * another process may have rebuilt it.
   *
   * Every answer rests on a stat check of the files made after the request
   * arrived (`arrivedAt`, on `now`), or within the info cache's revalidation
   * window. Inside a window the check runs at once (its answer holds for
   * the window anyway); strict (no window), concurrent requests for a hot
   * digest share one check instead of 40 stats each, and none of them can be
   * answered from a check older than itself.
   */
  lookup(key: string, arrivedAt = this.now(), mark?: { revalidated: boolean }): InfoEntry | null | Promise<InfoEntry | null> {
    const e = this.fresh(key, arrivedAt);
    if (e) {
      this.stats.infoHits++;
      return e;
    }
    // The answer rests on a stat check made for it (serve's metrics: result="revalidated").
    if (mark) mark.revalidated = true;
    if (this.o.infoCache.revalidateMs > 0) return this.checkNow(key);
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
    const first = this.checked(key, c.load(key), at);
    if (first) {
      this.stats.infoHits++;
      return first;
    }
    // Another process may have rebuilt it since it was read.
    const again = this.checked(key, c.reload(key), at);
    if (again) this.stats.infoHits++;
    else {
      this.stats.infoMisses++;
      c.forget(key);
    }
    return again;
  }

  /** The entry if it is ours and its files are unchanged (then recorded as checked). */
  private checked(key: string, e: InfoEntry | null, at: number): InfoEntry | null {
    const checkedAt = e && this.ours(e) ? this.unchanged(e, at) : null;
    return e && checkedAt !== null ? this.hit(key, e, checkedAt) : null;
  }

  /** Records a use, and that the entry's files were found unchanged at `checkedAt`. */
  private hit(key: string, e: InfoEntry, checkedAt: number): InfoEntry {
    void this.o.infoCache.used(key);
    this.o.infoCache.checked(key, e, checkedAt);
    return e;
  }

  /**
   * The entry for exactly these files, built once if missing or stale.
   * `statedAt` is when the caller began stat'ing them (before resolving):
   * the entry is known current from then on, for the digest GETs after it.
   */
  async forFiles(key: string, files: readonly MirrorFile[], kind: ServiceKind, statedAt: number, onBuild?: () => void): Promise<InfoEntry> {
    checkServiceFiles(files, kind);
    const valid = (e: InfoEntry) => e.kind === kind && this.ours(e) && entryMatches(e, files);
    const c = this.o.infoCache;
    const mem = c.load(key);
    if (mem && valid(mem)) {
      this.stats.infoHits++;
      return this.hit(key, mem, statedAt);
    }
    if (c.building >= this.o.queueLimit && !c.isBuilding(key)) {
      throw new PkgError('busy', 'too many torrents being built; try again shortly', 'queue-limit');
    }
    let built = false;
    const entry = await c.obtain(key, valid, () => {
      // This request's build (serve's metrics: result="built"); a shared or loaded one is a hit.
      built = true;
      onBuild?.();
      return this.build(key, files, kind);
    });
    if (built) this.stats.infoMisses++;
    else this.stats.infoHits++;
    return this.hit(key, entry, statedAt);
  }

  private async build(key: string, files: readonly MirrorFile[], kind: ServiceKind): Promise<InfoEntry> {
    const started = process.hrtime.bigint();
    const { info, hashed } = await buildServiceInfo(this.o.pieces, files, kind, this.o.pieceLength, this.o.serviceName, undefined, this.o.infoSettings);
    this.stats.filesHashed += hashed;
    this.stats.filesCached += files.length - hashed;
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    this.o.log(`built ${key}: ${files.length} file${files.length === 1 ? '' : 's'}, ${hashed} hashed, ${ms.toFixed(1)} ms`);
    return { ...info, kind, pieceLength: this.o.pieceLength, serviceName: this.o.serviceName };
  }

  /** The whole torrent for an entry: its info bytes spliced in, with this request's host and the current trackers. */
  torrent(key: string, e: InfoEntry, baseUrl: string, trackers: readonly string[]): Torrent {
    // Most requests for a digest come from one host name with the same
    // trackers: then the last torrent is reused as it is.
    const c = this.o.infoCache;
    const webSeeds = this.o.webSeeds ?? [];
    const kept = c.ready(key, e, baseUrl, trackers, webSeeds);
    if (kept) return kept;
    const infoHashHex = e.infoHash.toString('hex');
    const made: Torrent = {
      baseUrl,
      webSeeds,
      trackers,
      bytes: serviceTorrent(e, baseUrl, trackers, webSeeds),
      infoHashHex,
      // Unquoted on purpose: the client strips "attachment; filename=" and uses the rest.
      disposition: `attachment; filename=${infoHashHex}.torrent`,
    };
    c.keepReady(key, e, made);
    return made;
  }
}
