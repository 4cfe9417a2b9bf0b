// What the proxy's status page shows (pkgtorrent-proxy(8), STATUS PAGE):
// ProxyStatus counts every answered request, always (unlike the metrics,
// which need --metrics-listen), in memory and bounded: totals since the
// start, one tally per hour for the last HOURS hours, the last RECENT
// package downloads and the mirror hosts seen. collectStatus() adds what the
// store and the engine say at the time of asking; the StatusSnapshot it
// returns is the page's data and, as it is, its JSON form.
import type { BtEngine } from '../core/bt-engine.js';
import { VERSION } from '../core/version.js';
import { ANSWER_PATHS, SOURCES, answerPath, bytesBySource, noBytes, type AnswerPath, type BySource } from './answer-path.js';
import type { Outcome } from './handle.js';
import type { TorrentLookup } from './lookup.js';
import type { Packages } from './packages.js';

/** Hours of per-hour tallies kept (and charted). */
export const HOURS = 48;
/** Package downloads kept for the page, newest first. */
export const RECENT = 50;
/** Mirror hosts remembered (the least recently used goes first). */
export const MIRRORS = 64;
export const HOUR_MS = 3_600_000;

export interface Tally {
  requests: number;
  /** Requests by how they were answered. */
  paths: Record<AnswerPath, number>;
  /** Bytes by where they came from (a piece two sources sent counts for both, as in the log). */
  bytes: BySource;
  /** Body bytes sent to clients. */
  delivered: number;
  /** Of the bytes by source, the share the mirror did not send (peers and store), 0 to 1; null before any byte. */
  mirrorSpared: number | null;
}

export interface HourTally extends Tally {
  /** The hour's start, ISO 8601. */
  start: string;
}

/** One package request (bittorrent, store or direct(why)), once its answer was over. */
export interface RecentDownload {
  /** When the answer ended, ISO 8601. */
  at: string;
  /** The file name, decoded from the URL (as it came from the client: shown escaped). */
  name: string;
  url: string;
  status: number;
  /** The log line's path: bittorrent, store, direct(why). */
  path: string;
  /** The package's length when known. */
  size: number | null;
  /** Body bytes sent. */
  bytes: number;
  from: BySource;
  durationMs: number;
  /** The most connections and seeds the engine reported (BitTorrent downloads). */
  peers: { connections: number; seeders: number } | null;
  /** Why the answer finished from the mirror, when it did. */
  fallback: string | null;
}

export interface MirrorSeen {
  /** scheme://host[:port] */
  origin: string;
  requests: number;
  /** Bytes sent to clients for requests to it. */
  delivered: number;
  /** Its first path segments whose torrent service answered (true) or did not (false); empty: never asked (no package yet). */
  service: Array<{ prefix: string; runs: boolean }>;
}

export interface StoreFigures {
  bytes: number;
  packages: number;
  limitBytes: number;
  /** Completed packages seeding now. */
  seeding: number;
}

export interface EngineFigures {
  /** libtorrent's version as the engine reported it. */
  version: string;
  /** Times it died and was started again. */
  restarts: number;
  /** Whether it answered just now; the figures below are null when not. */
  answering: boolean;
  torrents: number | null;
  peers: number | null;
  /** Bytes uploaded to peers since the engine (re)started. */
  uploaded: number | null;
}

export interface StatusSnapshot {
  /** pkgtorrent's version. */
  version: string;
  generatedAt: string;
  startedAt: string;
  uptimeMs: number;
  /** http://host:port the clients are configured with (the address the page was asked at). */
  proxyUrl: string;
  totals: Tally;
  /** Hours with traffic, oldest first, within the last HOURS. */
  hours: HourTally[];
  recent: RecentDownload[];
  mirrors: MirrorSeen[];
  store: StoreFigures | null;
  engine: EngineFigures;
}

/** A tally as it is counted; spared share and hour added when shown. */
interface Counts {
  requests: number;
  paths: Record<AnswerPath, number>;
  bytes: BySource;
  delivered: number;
}

function noCounts(): Counts {
  return { requests: 0, paths: Object.fromEntries(ANSWER_PATHS.map((p) => [p, 0])) as Record<AnswerPath, number>, bytes: noBytes(), delivered: 0 };
}

function add(c: Counts, path: AnswerPath, bytes: BySource, delivered: number): void {
  c.requests++;
  c.paths[path]++;
  for (const s of SOURCES) c.bytes[s] += bytes[s];
  c.delivered += delivered;
}

function tally(c: Counts): Tally {
  const all = SOURCES.reduce((n, s) => n + c.bytes[s], 0);
  return { requests: c.requests, paths: { ...c.paths }, bytes: { ...c.bytes }, delivered: c.delivered, mirrorSpared: all > 0 ? (c.bytes.peers + c.bytes.store) / all : null };
}

/** The file name of a URL's path, decoded when it decodes. */
function fileName(u: URL): string {
  const last = u.pathname.slice(u.pathname.lastIndexOf('/') + 1);
  try {
    return decodeURIComponent(last);
  } catch {
    return last;
  }
}

export class ProxyStatus {
  readonly startedAt: number;
  private readonly totals = noCounts();
  /** By hour number (ms / HOUR_MS), oldest first. */
  private readonly hours = new Map<number, Counts>();
  /** Newest last; at most RECENT. */
  private readonly recent: RecentDownload[] = [];
  /** By origin, least recently seen first. */
  private readonly mirrors = new Map<string, { requests: number; delivered: number }>();

  constructor(private readonly now: () => number = Date.now) {
    this.startedAt = now();
  }

  /**
   * One request, once its answer is over: `url` is what was asked (the
   * mirror's URL for a proxied request, host:port for a tunnel), `started`
   * when it came in (the same clock).
   */
  observe(o: Outcome, url: string, started: number): void {
    const now = this.now();
    const path = answerPath(o);
    const bytes = bytesBySource(o);
    add(this.totals, path, bytes, o.bytes);
    const hour = Math.floor(now / HOUR_MS);
    let h = this.hours.get(hour);
    if (!h) {
      // A new hour: the time to let the oldest go (not on every request).
      this.hours.set(hour, (h = noCounts()));
      this.prune(hour);
    }
    add(h, path, bytes, o.bytes);

    let u: URL | null = null;
    try {
      u = path === 'refused' || path === 'tunnel' ? null : new URL(url);
    } catch {
      u = null;
    }
    if (!u) return;
    const seen = this.mirrors.get(u.origin) ?? { requests: 0, delivered: 0 };
    seen.requests++;
    seen.delivered += o.bytes;
    this.mirrors.delete(u.origin);
    this.mirrors.set(u.origin, seen);
    if (this.mirrors.size > MIRRORS) this.mirrors.delete(this.mirrors.keys().next().value!);
    // Packages only: plain direct answers (metadata, not a package) have no reason.
    if (path === 'direct' && o.path === 'direct') return;
    this.recent.push({
      at: new Date(now).toISOString(),
      name: fileName(u),
      url: u.href,
      status: o.status,
      path: o.path,
      size: o.length ?? null,
      bytes: o.bytes,
      from: bytes,
      durationMs: Math.max(0, now - started),
      peers: o.peers ? { ...o.peers } : null,
      fallback: o.sent?.fallback ?? null,
    });
    if (this.recent.length > RECENT) this.recent.shift();
  }

  /** Drops the hours older than HOURS before `hour`. */
  private prune(hour: number): void {
    for (const k of this.hours.keys()) if (k <= hour - HOURS) this.hours.delete(k);
  }

  /** The traffic part of a snapshot, as of now. */
  traffic(): Pick<StatusSnapshot, 'generatedAt' | 'startedAt' | 'uptimeMs' | 'totals' | 'hours' | 'recent'> & { origins: Array<{ origin: string; requests: number; delivered: number }> } {
    const now = this.now();
    this.prune(Math.floor(now / HOUR_MS));
    return {
      generatedAt: new Date(now).toISOString(),
      startedAt: new Date(this.startedAt).toISOString(),
      uptimeMs: now - this.startedAt,
      totals: tally(this.totals),
      hours: [...this.hours.entries()].sort(([a], [b]) => a - b).map(([k, c]) => ({ start: new Date(k * HOUR_MS).toISOString(), ...tally(c) })),
      recent: this.recent.map((r) => ({ ...r, from: { ...r.from }, peers: r.peers && { ...r.peers } })).reverse(),
      origins: [...this.mirrors.entries()].reverse().map(([origin, m]) => ({ origin, ...m })),
    };
  }
}

/** What the status page reads besides the requests: the engine, the store and its seeding, the torrent lookup. */
export interface StatusSources {
  engine: BtEngine;
  packages: Packages;
  lookup: TorrentLookup;
  storeLimit: number;
}

/** How long the page waits for the engine's figures (it may be restarting). */
const ENGINE_WAIT_MS = 2000;

/** Everything the status page shows, as of now; `proxyUrl` is the address clients are told to use. */
export async function collectStatus(status: ProxyStatus, from: StatusSources, proxyUrl: string): Promise<StatusSnapshot> {
  let timer: NodeJS.Timeout | undefined;
  const session = await Promise.race([
    from.engine.session().catch(() => null),
    new Promise<null>((r) => (timer = setTimeout(() => r(null), ENGINE_WAIT_MS))),
  ]);
  clearTimeout(timer);
  const usage = await from.packages.store.usage().catch(() => null);
  const { origins, ...traffic } = status.traffic();
  const known = from.lookup.knownPrefixes();
  return {
    version: VERSION,
    ...traffic,
    proxyUrl,
    mirrors: origins.map((m) => ({
      ...m,
      service: known.filter((k) => new URL(k.prefix).origin === m.origin).map((k) => ({ prefix: new URL(k.prefix).pathname, runs: k.service })),
    })),
    store: usage && { ...usage, limitBytes: from.storeLimit, seeding: from.packages.seedingNow },
    engine: {
      version: from.engine.version,
      restarts: Math.max(0, from.engine.generation - 1),
      answering: session !== null,
      torrents: session?.torrents ?? null,
      peers: session?.peers ?? null,
      uploaded: session?.uploaded ?? null,
    },
  };
}
