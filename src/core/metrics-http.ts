// The metrics listener of serve and proxy (--metrics-listen): its own
// node:http server, never the public port, so no mirror path can collide
// with it. GET /metrics is prom-client's registry; /-/healthy answers while
// the process does; /-/ready runs the command's own check.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { PkgError, errnoText } from './errors.js';
import { VERSION } from './version.js';

/** Every metric of ours starts so; prom-client's process_* and nodejs_* keep their usual names. */
export const PREFIX = 'pkgtorrent_';

/**
 * A registry with the process and Node metrics (collected on scrape) and
 * pkgtorrent_build_info{version} 1.
 */
export function newRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // Gauges named as counters (promtool's lint refuses them); the nodejs_active_* without the suffix stay.
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
  // Every cluster worker says the same: the primary shows it once rather than summed (serve --workers).
  new Gauge({ name: `${PREFIX}build_info`, help: 'pkgtorrent version running (always 1)', labelNames: ['version'], aggregator: 'first', registers: [registry] }).set({ version: VERSION }, 1);
  return registry;
}

/**
 * A counter without labels whose total is read when it is scraped: the
 * counting itself stays a plain number (or the engine's own count) off
 * prom-client's path. `read` resolving null leaves the last value.
 */
export function scrapedCounter(
  registry: Registry,
  name: string,
  help: string,
  read: () => number | null | Promise<number | null>,
  /** How serve --workers N merges it (prom-client's aggregator): summed unless the workers count one shared thing. */
  aggregator: 'sum' | 'max' = 'sum',
): Counter {
  return new Counter({
    name,
    help,
    aggregator,
    registers: [registry],
    async collect() {
      const total = await read();
      if (total === null) return;
      this.reset();
      this.inc(total);
    },
  });
}

/**
 * A labelled counter whose totals are read when it is scraped, as
 * scrapedCounter: `read` gives each label set with its count.
 */
export function scrapedCounts<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[], read: () => Iterable<[Record<L, string>, number]>): Counter<L> {
  return new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      for (const [labels, n] of read()) this.inc(labels as Partial<Record<L, string>>, n);
    },
  });
}

/** A gauge read when it is scraped; `read` resolving null (nothing to tell) leaves the last value. */
export function scrapedGauge(
  registry: Registry,
  name: string,
  help: string,
  read: () => number | null | undefined | Promise<number | null | undefined>,
  aggregator: 'sum' | 'max' = 'sum',
): Gauge {
  return new Gauge({
    name,
    help,
    aggregator,
    registers: [registry],
    async collect() {
      const v = await read();
      if (v !== null && v !== undefined) this.set(v);
    },
  });
}

/**
 * `read` shared by the metrics of one scrape: prom-client collects them all
 * at once, so the calls made while one is under way get its answer (one
 * engine round trip, one walk of the store, for several metrics); the next
 * scrape reads afresh.
 */
export function perScrape<T>(read: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | null = null;
  return () => (pending ??= read().finally(() => (pending = null)));
}

/** What /metrics answers: a Registry, or serve's cluster primary aggregating its workers'. */
export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

/** Why the process is not ready (one line), or null when it is. */
export type ReadyCheck = () => Promise<string | null>;

export interface MetricsListener {
  /** "http://127.0.0.1:9100" */
  url: string;
  close(): Promise<void>;
}

const TEXT = 'text/plain; charset=utf-8';

function answer(req: IncomingMessage, res: ServerResponse, status: number, body: string, type = TEXT, extra: Record<string, string> = {}): void {
  const bytes = Buffer.from(body);
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': bytes.length, 'Cache-Control': 'no-store', ...extra });
  res.end(req.method === 'HEAD' ? undefined : bytes);
}

async function handle(req: IncomingMessage, res: ServerResponse, registry: MetricsSource, ready: ReadyCheck): Promise<void> {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  if (path !== '/metrics' && path !== '/-/healthy' && path !== '/-/ready') return answer(req, res, 404, 'not found: /metrics, /-/healthy, /-/ready\n');
  if (req.method !== 'GET' && req.method !== 'HEAD') return answer(req, res, 405, 'method not allowed\n', TEXT, { Allow: 'GET, HEAD' });
  if (path === '/metrics') return answer(req, res, 200, await registry.metrics(), registry.contentType);
  if (path === '/-/healthy') return answer(req, res, 200, 'OK\n');
  const why = await ready().catch((err: unknown) => `readiness check failed: ${(err as Error).message}`);
  return why === null ? answer(req, res, 200, 'OK\n') : answer(req, res, 503, why.replace(/[\r\n]+/g, ' ') + '\n');
}

/** ADDRESS:PORT ([v6]:PORT) as the metrics-listen setting spells it. */
export function splitListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  return { host: listen.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(listen.slice(i + 1)) };
}

export async function startMetricsListener(listen: string, registry: MetricsSource, ready: ReadyCheck): Promise<MetricsListener> {
  const { host, port } = splitListen(listen);
  const server = createServer((req, res) => {
    handle(req, res, registry, ready).catch(() => {
      if (!res.headersSent) answer(req, res, 500, 'internal error\n');
      else res.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new PkgError('io', `cannot listen for metrics on ${listen}: ${errnoText(err)}`)));
    server.listen(port, host, () => resolve());
  });
  // A scraper's keep-alive connection must not hold up a stop.
  server.unref();
  const addr = server.address() as AddressInfo;
  const shown = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${shown}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
