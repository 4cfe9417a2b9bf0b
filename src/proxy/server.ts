// `pkgtorrent proxy`: a node:http forward proxy (absolute-form requests,
// CONNECT tunnels) and mirror-mode front (/NAME/<path> → URL/<path>) over
// the engine, the store and the torrent lookup.
import type { Duplex } from 'node:stream';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { BtEngine, type Spawn } from '../core/bt-engine.js';
import { parseMirror, parsePorts } from '../core/setting-parsers.js';
import { PkgError } from '../core/errors.js';
import { access as accessRule } from './allow.js';
import { accessEntry, proxyAccessLog } from './access-log.js';
import type { LogFormat } from '../core/config.js';
import { fail, handle, type Outcome, type Route } from './handle.js';
import { TorrentLookup } from './lookup.js';
import { Packages } from './packages.js';
import { packageMatcher } from './patterns.js';
import { Store } from './store.js';
import { tunnel } from './tunnel.js';
import { ProxyMetrics, proxyReady } from './metrics.js';
import { ProxyStatus, collectStatus } from './status.js';
import { STATUS_NAME, answerStatus, clientFacingUrl, statusRequest } from './status-http.js';
import { startMetricsListener, type MetricsListener } from '../core/metrics-http.js';

export interface ProxyOptions {
  host: string;
  port: number;
  mirrors: string[];
  patterns: string[];
  minSize: number;
  stallMs: number;
  lookupTimeoutMs: number;
  noServiceTtlMs: number;
  serviceName: string;
  store: string;
  storeSize: number;
  seedTimeMs: number;
  seedRatio: number;
  seedMaxTorrents: number;
  uploadLimit: number;
  btPort: string;
  dht: boolean;
  lpd: boolean;
  pex: boolean;
  allowFrom: string[];
  allowHosts: string[];
  /** Several peers on one address (tests, all on 127.0.0.1). */
  btLoopback?: boolean;
  spawn?: Spawn;
  /** How long answers in flight get when the proxy stops (default STOP_GRACE_MS). */
  stopGraceMs?: number;
  /** Verified bytes each download keeps in memory for clients that keep up (default 16 MiB). */
  heldBytes?: number;
  log: (line: string) => void;
  accessLog: (line: string) => void;
  /** Access lines as text (the default) or JSON objects (--log-format json). */
  logFormat?: LogFormat;
  /** ADDRESS:PORT of the metrics listener (--metrics-listen): /metrics, /-/healthy, /-/ready. */
  metricsListen?: string;
  /** The clock of the status page's tallies and durations (tests). */
  now?: () => number;
}

export interface RunningProxy {
  url: string;
  /** What the status page shows (/_pkgtorrent/ on the proxy's port). */
  status: ProxyStatus;
  /** The metrics listener's "http://127.0.0.1:9100", with metricsListen. */
  metricsUrl?: string;
  engine: BtEngine;
  packages: Packages;
  /** Stored packages seeding again since the start, once the engine checked them all. */
  reseeded: Promise<number>;
  close(graceMs?: number): Promise<void>;
}

/** How long answers in flight get to finish when the proxy is stopped (SIGTERM, SIGINT). */
export const STOP_GRACE_MS = 30_000;

export async function startProxy(o: ProxyOptions): Promise<RunningProxy> {
  const allow = accessRule(o.host, o.allowFrom, o.allowHosts);
  const access = proxyAccessLog(o.accessLog, o.logFormat === 'json' ? (await import('../core/json-log.js')).jsonLogger(o.accessLog) : null);
  const mirrors = new Map(o.mirrors.map((m) => parseMirror(m)).map((m) => [m.name, m.url]));
  if (mirrors.has(STATUS_NAME)) throw new PkgError('usage', `--mirror ${STATUS_NAME}=...: that name is the status page's (/${STATUS_NAME}/); choose another`);
  const now = o.now ?? Date.now;
  // Always on (the metrics only with --metrics-listen): the status page's tallies.
  const status = new ProxyStatus(now);
  let packages: Packages | null = null;
  const reseed = async (): Promise<number> => {
    if (!packages) return 0; // the engine restarted before the proxy was up: its start's pass comes
    return packages.reseed().then(
      (n) => {
        if (n > 0) o.log(`seeding ${n} stored package(s) again`);
        return n;
      },
      (err: Error) => {
        o.log(`seeding stored packages again stopped: ${err.message}`);
        return 0;
      },
    );
  };
  let engineRef: BtEngine | null = null;
  const metrics = o.metricsListen ? new ProxyMetrics(() => engineRef, () => packages) : null;
  const store = await Store.open(o.store, o.storeSize, (ih) => packages?.forgetSeed(ih));
  const ports = parsePorts(o.btPort);
  const engine = await BtEngine.start({
    listen: `0.0.0.0:${ports.first}`,
    retryPorts: ports.last - ports.first,
    spawn: o.spawn,
    dht: o.dht,
    lpd: o.lpd,
    pex: o.pex,
    loopback: o.btLoopback,
    uploadLimit: o.uploadLimit,
    log: o.log,
    onRestart: () => {
      metrics?.engineRestarted();
      void reseed();
    },
  });
  engineRef = engine;
  packages = new Packages(engine, store, { maxTorrents: o.seedMaxTorrents, timeMs: o.seedTimeMs, ratio: o.seedRatio });
  const lookup = new TorrentLookup({ serviceName: o.serviceName, timeoutMs: o.lookupTimeoutMs, noServiceTtlMs: o.noServiceTtlMs });
  const route: Route = {
    isPackage: packageMatcher(o.patterns),
    minSize: o.minSize,
    stallMs: o.stallMs,
    lookup,
    packages,
    discovery: o.lpd || o.dht,
    warn: o.log,
    warned: new Set(),
  };

  const target = (req: IncomingMessage): URL => {
    const raw = req.url ?? '';
    if (/^https?:\/\//i.test(raw)) {
      const u = new URL(raw);
      if (u.protocol !== 'http:') throw new PkgError('bad-request', 'https goes through CONNECT');
      if (!allow.host(u.hostname)) throw new PkgError('forbidden', `host ${u.hostname} not allowed by --allow-host`);
      return u;
    }
    const m = /^\/([^/?]+)(\/[^]*)?$/.exec(raw);
    const base = m && mirrors.get(m[1]!);
    if (!base) throw new PkgError('not-found', 'not a proxy request: use an absolute URL, or /NAME/<path> for a --mirror NAME');
    return new URL(base + (m[2] ?? '/'));
  };

  // Answers in flight, so a stop can let them finish.
  let inFlight = 0;
  let stopping = false;
  let drained: () => void = () => undefined;
  let listenUrl = '';
  const onRequest = async (req: IncomingMessage, res: ServerResponse) => {
    const started = now();
    let url = req.url ?? '';
    let outcome: Outcome;
    const page = statusRequest(url);
    inFlight++;
    try {
      if (stopping) outcome = fail(res, 503, 'proxy is stopping');
      else if (!allow.client(req.socket.remoteAddress)) outcome = fail(res, 403, 'client not allowed by --allow-from');
      else if (page) {
        const proxyUrl = clientFacingUrl(req.headers.host, listenUrl);
        outcome = await answerStatus(req, res, page, () => collectStatus(status, { engine, packages, lookup, storeLimit: o.storeSize }, proxyUrl));
      } else {
        const u = target(req);
        url = u.href;
        outcome = await handle(req, res, u, route);
      }
    } catch (err) {
      const e = err instanceof PkgError ? err : new PkgError('bad-request', (err as Error).message);
      outcome = fail(res, e.httpStatus, e.message);
    }
    // Logged once the answer is over. Cut: it never reached its end. A
    // client that reads the last byte and hangs up at once may close before
    // our end() or 'finish', so with a declared length the bytes decide.
    if (!res.writableFinished && !res.destroyed) await new Promise((r) => res.once('close', r));
    const cut = outcome.length !== undefined ? outcome.bytes < outcome.length : !res.writableEnded;
    const at = now();
    access(accessEntry(req, url, outcome, at - started, cut), at);
    // The page's own answers are not traffic of the proxy's.
    if (outcome.path !== 'status') {
      metrics?.observe(outcome);
      status.observe(outcome, url, started);
    }
    if (--inFlight === 0) drained();
  };

  const server: Server = createServer((req, res) => void onRequest(req, res));
  let metricsListener: MetricsListener | undefined;
  const tunnels = new Set<Duplex>();
  server.on('connect', (req: IncomingMessage, socket, head: Buffer) => {
    const started = now();
    if (!allow.client(req.socket.remoteAddress)) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n');
      return;
    }
    tunnels.add(socket);
    socket.once('close', () => tunnels.delete(socket));
    void tunnel(req, socket, head, (h) => allow.host(h)).then((r) => {
      const outcome: Outcome = { status: r.status, path: 'tunnel', bytes: r.bytes };
      const at = now();
      access(accessEntry(req, req.url ?? '', outcome, at - started, false), at);
      metrics?.observe(outcome);
      status.observe(outcome, req.url ?? '', started);
    });
  });
  server.on('clientError', (_err, socket) => socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n'));
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(new PkgError('io', `cannot listen on ${o.host}:${o.port}: ${e.code ?? e.message}${e.code === 'EADDRINUSE' ? ' (choose another --port; 3142 is also apt-cacher-ng\'s)' : ''}`)),
      );
      server.listen(o.port, o.host, resolve);
    });
    metricsListener = metrics && o.metricsListen ? await startMetricsListener(o.metricsListen, metrics.registry, proxyReady(() => engineRef)) : undefined;
  } catch (err) {
    server.close();
    packages.close();
    await engine.close();
    throw err;
  }
  const reseeded = reseed();
  const addr = server.address() as { address: string; port: number; family: string };
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  listenUrl = `http://${host}:${addr.port}`;
  return {
    url: listenUrl,
    status,
    metricsUrl: metricsListener?.url,
    engine,
    packages,
    reseeded,
    /**
     * Stops accepting, answers 503 to new requests on open connections, and
     * gives the answers in flight `graceMs` to finish; what is still open
     * then is cut (and logged with '!').
     */
    async close(graceMs = o.stopGraceMs ?? STOP_GRACE_MS) {
      stopping = true;
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      const idle = setInterval(() => server.closeIdleConnections(), 50);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((r) => (inFlight === 0 ? r() : (drained = r))),
        new Promise<void>((r) => (timer = setTimeout(r, graceMs))),
      ]);
      clearTimeout(timer);
      clearInterval(idle);
      server.closeAllConnections();
      for (const s of tunnels) s.destroy();
      await closed;
      await metricsListener?.close();
      packages?.close();
      await engine.close();
    },
  };
}
