// serve's Prometheus metrics (pkgtorrent-service(8), METRICS). Every
// request is counted once, when its response closes, from the same figures
// as its access log line (access-log.ts): the handler that took it, its
// status, the bytes that really left. Torrent answers are told apart from
// their status: 200 hit or built, 412 not cached, 404 not found, anything
// else rejected.
import { access, constants } from 'node:fs/promises';
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import { LIMIT_REASONS, errnoText, type LimitReason } from '../core/errors.js';
import type { HashPool } from '../core/hasher.js';
import type { InfoCache } from '../core/info-cache.js';
import type { TrackerList } from '../core/trackers.js';
import type { Torrents } from './torrents.js';
import { PREFIX, newRegistry, perScrape, scrapedCounter, scrapedCounts, scrapedGauge, type MetricsSource, type ReadyCheck } from '../core/metrics-http.js';
import type { Workers } from '../cli/supervisor.js';
import { ServiceResponse } from './service-response.js';
import type { BtEngine } from '../core/bt-engine.js';
import type { OriginSeeder } from './seeder.js';

/** For Torrents.forFiles: this response's torrent was built by it (result="built"). */
export function builtBy(res: object): () => void {
  return () => {
    if (res instanceof ServiceResponse) res.built = true;
  };
}

/** The handler label: which part of the service answered. */
export type Handler = 'digest' | 'simple' | 'nullfile' | 'files' | 'other';

/** Seconds; a cold build of many packages may take most of a minute. */
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * The per-request figures are plain numbers here, handed to prom-client's
 * counters when /metrics is scraped (their collect()): a labelled inc costs
 * some 0.4 us (hashing the label set), which the cached GET, benchmarked at
 * some 35 us of CPU, should not pay three times. The histogram is
 * prom-client's own (one observe per request).
 */
export class ServeMetrics {
  readonly registry: Registry;
  private readonly duration: Histogram<'handler'>;
  /** Requests by "handler method code". */
  private readonly requestCounts = new Map<string, number>();
  private readonly results = { hit: 0, revalidated: 0, built: 0, not_cached: 0, not_found: 0, rejected: 0 };
  /** Requests refused by a bound of the service, by its setting. */
  private readonly limits: Record<LimitReason, number> = Object.fromEntries(LIMIT_REASONS.map((l) => [l, 0])) as Record<LimitReason, number>;
  private sentBytes = 0;
  private hashedBytes = 0;
  private readonly durationOf: Record<Handler, (v: number) => void>;

  constructor() {
    const registry = (this.registry = newRegistry());
    const registers = [registry];
    const counts = this.requestCounts;
    const results = this.results;
    new Counter({
      name: `${PREFIX}http_requests_total`,
      help: 'HTTP requests answered, by handler, method and status code',
      labelNames: ['handler', 'method', 'code'] as const,
      registers,
      collect() {
        this.reset();
        for (const [key, n] of counts) {
          const [handler, method, code] = key.split(' ') as [string, string, string];
          this.inc({ handler, method, code }, n);
        }
      },
    });
    this.duration = new Histogram({ name: `${PREFIX}http_request_duration_seconds`, help: 'time from a request to the end of its response, by handler', labelNames: ['handler'], buckets: DURATION_BUCKETS, registers });
    scrapedCounts(registry, `${PREFIX}torrent_requests_total`, 'digest and simple requests by result: hit, revalidated (a digest GET answered after a stat check of its files), built, not_cached (412), not_found, rejected', ['result'], () =>
      Object.entries(results).map(([result, n]) => [{ result }, n]),
    );
    const limits = this.limits;
    scrapedCounts(registry, `${PREFIX}limit_rejections_total`, 'requests refused by a bound of the service, by its setting: queue-limit, max-body, max-paths, max-glob-matches, request-timeout', ['limit'], () =>
      Object.entries(limits).map(([limit, n]) => [{ limit }, n]),
    );
    scrapedCounter(registry, `${PREFIX}http_response_bytes_total`, 'response body bytes sent (a cut answer counts what left)', () => this.sentBytes);
    scrapedCounter(registry, `${PREFIX}hash_bytes_total`, 'bytes of mirror files hashed to build torrents', () => this.hashedBytes);
    const handlers: Handler[] = ['digest', 'simple', 'nullfile', 'files', 'other'];
    this.durationOf = Object.fromEntries(handlers.map((h) => [h, this.observer(h)])) as Record<Handler, (v: number) => void>;
  }

  private observer(handler: Handler): (v: number) => void {
    const labels = { handler };
    this.duration.zero(labels);
    return (v) => this.duration.observe(labels, v);
  }

  /** Bytes hashed for a build. */
  hashed(bytes: number): void {
    this.hashedBytes += bytes;
  }

  /** One finished (or cut) response: called by the access log with its figures. */
  observe(res: ServiceResponse, bytes: number, ms: number): void {
    const handler = res.handler;
    const code = res.statusCode;
    // The parser accepts only the methods it knows: the set of keys stays small.
    const key = `${handler} ${res.req.method ?? 'OTHER'} ${code}`;
    this.requestCounts.set(key, (this.requestCounts.get(key) ?? 0) + 1);
    this.durationOf[handler](ms / 1000);
    this.sentBytes += bytes;
    if (handler === 'digest' || handler === 'simple') {
      this.results[code === 200 ? (res.built ? 'built' : res.revalidated ? 'revalidated' : 'hit') : code === 412 ? 'not_cached' : code === 404 ? 'not_found' : 'rejected']++;
    }
    if (res.limit) this.limits[res.limit]++;
  }

  /**
   * The service's state, read on scrape: its caches' lookups, builds in
   * flight and hashing queued, and the trackers file.
   */
  service(o: { torrents: Torrents; infoCache: InfoCache; pool: HashPool; trackers: TrackerList }): void {
    const stats = o.torrents.stats;
    scrapedCounts(this.registry, `${PREFIX}cache_lookups_total`, 'lookups of the info cache (one per torrent asked for) and of the piece cache (one per file of a build), by result: hit or miss', ['cache', 'result'], () => [
      [{ cache: 'info', result: 'hit' }, stats.infoHits],
      [{ cache: 'info', result: 'miss' }, stats.infoMisses],
      [{ cache: 'piece', result: 'hit' }, stats.filesCached],
      [{ cache: 'piece', result: 'miss' }, stats.filesHashed],
    ]);
    scrapedGauge(this.registry, `${PREFIX}builds_in_flight`, 'torrents being built now (at most --queue-limit)', () => o.infoCache.building);
    scrapedGauge(this.registry, `${PREFIX}hash_tasks_queued`, 'hashing tasks waiting for a worker thread', () => o.pool.pending);
    // Every worker reads the one trackers file: its figures are the file's, not summed over workers.
    scrapedCounter(this.registry, `${PREFIX}trackers_file_reloads_total`, 'times the trackers file was read after a change (the first read included)', () => o.trackers.reloads, 'max');
    scrapedGauge(this.registry, `${PREFIX}trackers_file_invalid_lines`, 'lines of the trackers file as last read that are not tracker URLs (ignored)', () => o.trackers.invalidLines, 'max');
  }

  /** With serve --seed: torrents seeded, peers and bytes uploaded by the origin, read from the engine on scrape. */
  seeding(engine: BtEngine, seeder: OriginSeeder): void {
    // One engine round trip per scrape for both.
    const session = perScrape(() => engine.session().catch(() => null));
    scrapedGauge(this.registry, `${PREFIX}seed_torrents`, 'torrents the origin seeder is seeding', () => seeder.infoHashes.length);
    scrapedGauge(this.registry, `${PREFIX}seed_peers`, 'peers connected to the origin seeder', async () => (await session())?.peers);
    scrapedCounter(this.registry, `${PREFIX}seed_uploaded_bytes_total`, 'bytes the origin seeder uploaded to peers (since its engine started)', async () => (await session())?.uploaded ?? null);
  }
}

/**
 * serve's readiness: the root readable, the hash pool alive, and the cache
 * dir writable unless it was found read-only at the start (and said so).
 */
export function serveReady(o: { rootDir: string; poolAlive: () => boolean; cacheDir: string; cacheReadOnly: boolean; cacheAvailable: () => boolean }): ReadyCheck {
  return async () => {
    try {
      await access(o.rootDir, constants.R_OK | constants.X_OK);
    } catch (err) {
      return `root ${o.rootDir} cannot be read: ${errnoText(err)}`;
    }
    if (!o.poolAlive()) return 'hash workers are stopped';
    if (o.cacheReadOnly) return null;
    try {
      await access(o.cacheDir, constants.W_OK);
    } catch (err) {
      return `cache dir ${o.cacheDir} cannot be written: ${errnoText(err)}`;
    }
    if (!o.cacheAvailable()) return `cache dir ${o.cacheDir} cannot be written (a write failed)`;
    return null;
  };
}

type MetricsJson = MetricObjectWithValues<MetricValue<string>>[];

/**
 * The metrics of serve --workers N, on the primary's listener: each scrape
 * asks every ready worker for its registry as JSON (their collect() runs
 * there, so the plain-number counters are read as usual) and merges them
 * with prom-client's AggregatorRegistry.aggregate, which applies each
 * metric's `aggregator`: counters and histograms are summed (the default),
 * pkgtorrent_build_info and nodejs_version_info are taken from the first
 * worker, process_start_time_seconds is left out (prom-client's own
 * choices for its default metrics stand). The primary adds
 * pkgtorrent_serve_workers_ready, counted by itself.
 */
export class ClusterMetrics implements MetricsSource {
  readonly contentType = Registry.PROMETHEUS_CONTENT_TYPE;
  private readonly own = new Registry();

  constructor(private readonly workers: () => Workers | null) {
    new Gauge({
      name: `${PREFIX}serve_workers_ready`,
      help: 'serve workers ready to answer (counted by the primary of serve --workers N)',
      registers: [this.own],
      collect() {
        this.set(workers()?.readyCount() ?? 0);
      },
    });
  }

  async metrics(): Promise<string> {
    const answers = (await this.workers()?.ask('metrics')) ?? [];
    const all = [await this.own.getMetricsAsJSON(), ...answers.map((a) => a.answer as MetricsJson)];
    return AggregatorRegistry.aggregate(all).metrics();
  }
}

/**
 * The primary's readiness: at least one worker ready, and every ready
 * worker's own check passing (node:cluster hands connections to each
 * listening worker in turn, so one broken worker fails its share). A
 * worker still starting, or being replaced, gets no connections and does
 * not count.
 */
export function clusterReady(workers: () => Workers | null): ReadyCheck {
  return async () => {
    const answers = (await workers()?.ask('ready')) ?? [];
    if (!answers.length) return 'no worker is ready';
    const bad = answers.find((a) => a.answer !== null);
    return bad ? `worker ${bad.pid}: ${String(bad.answer)}` : null;
  };
}

/** A worker's answers to its primary's asks (see ClusterMetrics). */
export function workerAnswers(metrics: ServeMetrics, ready: ReadyCheck): Record<string, () => Promise<unknown>> {
  return { metrics: () => metrics.registry.getMetricsAsJSON(), ready };
}
