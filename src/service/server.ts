// One serve process: builds the core objects from settings, listens, and
// stops gracefully (no new connections, in-flight requests finish, hash
// workers end, no temp files left because every write is atomic).
import { createServer, IncomingMessage, type Server } from 'node:http';
import { ServiceResponse } from './service-response.js';
import type { AddressInfo } from 'node:net';
import { PkgError, errnoText } from '../core/errors.js';
import type { CacheDir } from '../core/cache-dir.js';
import { CacheWrites } from '../core/cache-writes.js';
import { HashPool } from '../core/hasher.js';
import { InfoCache } from '../core/info-cache.js';
import { PieceCache } from '../core/piece-cache.js';
import { PieceStore } from '../core/piece-store.js';
import type { MirrorRoot } from '../core/root.js';
import { TrackerList } from '../core/trackers.js';
import { requestHandler } from './app.js';
import { LogBuffer, jsonAccessLog, textAccessLog } from './access-log.js';
import type { LogFormat } from '../core/config.js';
import type { ServiceContext } from './context.js';
import { PieceMemo } from './piece-memo.js';
import { Torrents } from './torrents.js';
import type { InfoSettings } from '../core/service-layout.js';
import { BtEngine, type BtEngineOptions } from '../core/bt-engine.js';
import { OriginSeeder } from './seeder.js';
import { TrackerWhitelist } from './tracker-whitelist.js';
import { ServeMetrics, serveReady } from './metrics.js';
import { startMetricsListener, type ReadyCheck } from '../core/metrics-http.js';

/** What a request whose build is cut short by a stop is told (a 503 with Retry-After). */
const STOPPING = new PkgError('busy', 'service is stopping');
/** After the grace period, how long the 503s of cut-short builds get to be written. */
const LAST_WORDS_MS = 1000;

export interface ServeOptions {
  root: MirrorRoot;
  /** As openCacheDir found it: a cache that cannot be written is reported at start. */
  cacheDir: CacheDir;
  trackersFile: string;
  trackersIntervalMs: number;
  pieceLength: number;
  serviceName: string;
  /** The private flag and source string of every info dictionary (settings private and source). */
  infoSettings?: InfoSettings;
  /** Further web seeds' base URLs, after the mirror's own (setting web-seeds). */
  webSeeds?: readonly string[];
  host: string;
  port: number;
  baseUrl: string | undefined;
  trustProxy: boolean;
  files: boolean;
  jobs: number;
  maxBody: number;
  maxPaths: number;
  maxGlobMatches: number;
  queueLimit: number;
  requestTimeoutMs: number;
  /** How long a stat check of a cached entry's files holds for GETs, in ms (InfoCacheOptions.revalidateMs). */
  revalidateMs: number;
  /** While the cache cannot be written, how often a write is tried again (default CACHE_RETRY_MS). */
  cacheRetryMs?: number;
  /** The origin seeder (serve --seed): its engine's settings, and its bounds. */
  seed?: { engine: Omit<BtEngineOptions, 'log'>; maxTorrents: number; idleMs: number };
  /** A whitelisting tracker's file (and pid file) that every info hash handed out is added to. */
  trackerWhitelist?: { file: string; pidFile?: string };
  /** Operator messages (warnings, builds, internal errors), one line each. */
  log: (line: string) => void;
  /** Access log lines, newline included (batched: several lines may come in one call). */
  accessLog: (line: string) => void;
  /** Access lines as text (the default) or JSON objects (--log-format json). */
  logFormat?: LogFormat;
  /** ADDRESS:PORT of the metrics listener (--metrics-listen): /metrics, /-/healthy, /-/ready. */
  metricsListen?: string;
  /** Count metrics without a listener: a cluster worker's, asked for by its primary (serve --workers N). */
  metricsForPrimary?: boolean;
}

export interface RunningServer {
  server: Server;
  /** The origin seeder, with --seed. */
  seeder?: OriginSeeder;
  engine?: BtEngine;
  /** The metrics listener's "http://127.0.0.1:9100", with metricsListen. */
  metricsUrl?: string;
  /** The metrics, with metricsListen or metricsForPrimary. */
  metrics?: ServeMetrics;
  /** Why the service is not ready (the metrics listener's /-/ready), or null. */
  ready: ReadyCheck;
  /** "http://127.0.0.1:8080" */
  url: string;
  /**
   * Stops accepting, lets in-flight requests finish (at most graceMs, then
   * builds still hashing answer 503 and remaining connections are cut), ends
   * the hash workers.
   */
  close(graceMs?: number): Promise<void>;
}

export async function startServer(o: ServeOptions): Promise<RunningServer> {
  const cacheDir = o.cacheDir.dir;
  // The cache is never part of the mirror, by whatever path or link a request reaches it.
  const root = o.root.hiding(cacheDir);
  const pool = new HashPool(o.jobs);
  // One gate for both caches: they share the dir, and so its file system.
  const writes = new CacheWrites(cacheDir, o.log, { retryMs: o.cacheRetryMs, unwritable: o.cacheDir.unwritable });
  const metrics = o.metricsListen || o.metricsForPrimary ? new ServeMetrics() : null;
  const store = new PieceStore(new PieceCache(cacheDir), pool, { writes, onHashed: metrics ? (n) => metrics.hashed(n) : undefined });
  const infoCache = new InfoCache(cacheDir, { waitMs: o.requestTimeoutMs, writes, revalidateMs: o.revalidateMs });
  const torrents = new Torrents({
    root,
    pieces: new PieceMemo(store),
    infoCache,
    pieceLength: o.pieceLength,
    serviceName: o.serviceName,
    infoSettings: o.infoSettings,
    webSeeds: o.webSeeds,
    queueLimit: o.queueLimit,
    log: o.log,
  });
  const ctx: ServiceContext = {
    root,
    torrents,
    trackers: new TrackerList(o.trackersFile, { checkIntervalMs: o.trackersIntervalMs, warn: o.log }),
    pieceLength: o.pieceLength,
    serviceName: o.serviceName,
    baseUrl: { baseUrl: o.baseUrl, trustProxy: o.trustProxy },
    limits: { maxBody: o.maxBody, maxPaths: o.maxPaths, maxGlobMatches: o.maxGlobMatches },
    files: o.files,
    requestTimeoutMs: o.requestTimeoutMs,
    log: o.log,
  };
  // Read the trackers file now, so a problem with it shows at startup.
  await ctx.trackers.current();
  const whitelist = o.trackerWhitelist ? await TrackerWhitelist.open({ ...o.trackerWhitelist, log: o.log }) : undefined;
  const engine = o.seed ? await BtEngine.start({ ...o.seed.engine, log: o.log }) : undefined;
  const seeder =
    engine && o.seed ? new OriginSeeder({ engine, pathOf: (rel) => root.join(rel), maxTorrents: o.seed.maxTorrents, idleMs: o.seed.idleMs, log: o.log }) : undefined;
  if (whitelist || seeder) {
    ctx.handOut = (e, t) => {
      // Listed with the tracker first: the seeder's own announce must be accepted too.
      const listed = whitelist?.add(t.infoHashHex);
      if (!seeder) return listed;
      // A new torrent goes out once the tracker lists the origin (a torrent seeded already: at once).
      const offer = () => seeder.offer(e, t.bytes, t.trackers.length > 0);
      if (!listed) return offer()?.then(() => undefined);
      return listed.then(offer).then(() => undefined);
    };
  }

  const accessLog = new LogBuffer(o.accessLog);
  const batched = (text: string) => accessLog.add(text);
  const access = o.logFormat === 'json' ? jsonAccessLog((await import('../core/json-log.js')).jsonLogger(batched)) : textAccessLog(batched);
  const server = createServer<typeof IncomingMessage, typeof ServiceResponse>(
    {
      // Every response is made with the fields the access log needs (see service-response.ts).
      ServerResponse: ServiceResponse,
      // Slow senders (a body trickled byte by byte) are cut off.
      requestTimeout: o.requestTimeoutMs,
      headersTimeout: Math.min(o.requestTimeoutMs, 60_000),
    },
    requestHandler(ctx, access, metrics),
  );
  if (metrics && engine && seeder) metrics.seeding(engine, seeder);
  metrics?.service({ torrents, infoCache, pool, trackers: ctx.trackers });
  await new Promise<void>((resolve, reject) => {
    const fail = (err: NodeJS.ErrnoException) => {
      seeder?.close();
      void engine?.close();
      reject(listenError(err, o.host, o.port));
    };
    server.once('error', fail);
    server.listen(o.port, o.host, () => {
      server.off('error', fail);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const ready = serveReady({ rootDir: o.root.dir, poolAlive: () => pool.alive, cacheDir, cacheReadOnly: o.cacheDir.unwritable !== null, cacheAvailable: () => writes.available });
  const metricsListener = metrics && o.metricsListen
    ? await startMetricsListener(o.metricsListen, metrics.registry, ready).catch(async (err: unknown) => {
        server.close();
        seeder?.close();
        await engine?.close();
        throw err;
      })
    : undefined;

  let closing: Promise<void> | null = null;
  const close = (graceMs = 10_000) =>
    (closing ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive connections go as soon as they are idle; busy ones get graceMs.
      const idle = setInterval(() => server.closeIdleConnections(), 50);
      server.closeIdleConnections();
      // Then builds still hashing fail as "service is stopping", so their
      // clients get a 503 with Retry-After instead of a cut connection;
      // whatever is still open a moment later is cut.
      let poolClosed: Promise<void> | undefined;
      const hashing = () => (poolClosed ??= pool.close(STOPPING));
      let cut: NodeJS.Timeout | undefined;
      const force = setTimeout(() => {
        void hashing();
        cut = setTimeout(() => server.closeAllConnections(), LAST_WORDS_MS);
      }, graceMs);
      await closed;
      await metricsListener?.close();
      clearInterval(idle);
      clearTimeout(force);
      clearTimeout(cut);
      // Builds that outlived their request (answered 503 at its timeout) end here, quietly.
      await hashing();
      seeder?.close();
      await engine?.close();
      accessLog.flush();
    })());

  return { server, seeder, engine, metricsUrl: metricsListener?.url, metrics: metrics ?? undefined, ready, url: `http://${host}:${addr.port}`, close };
}

/** A listen failure as one line an operator can act on. */
function listenError(err: NodeJS.ErrnoException, host: string, port: number): PkgError {
  const where = `cannot listen on ${host.includes(':') ? `[${host}]` : host}:${port}: ${errnoText(err)}`;
  switch (err.code) {
    case 'EADDRINUSE':
      return new PkgError('io', `${where} (choose another --port)`);
    case 'EACCES':
      return new PkgError('io', `${where} (ports below 1024 need privileges)`);
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
      return new PkgError('usage', `${where} (check --host)`);
    default:
      return new PkgError('io', where);
  }
}
