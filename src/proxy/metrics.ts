// The proxy's Prometheus metrics (pkgtorrent-proxy(8), METRICS): counted
// from each request's Outcome, the same figures its log line prints.
import { Counter, type Registry } from 'prom-client';
import type { BtEngine } from '../core/bt-engine.js';
import { PREFIX, newRegistry, perScrape, scrapedCounter, scrapedGauge, type ReadyCheck } from '../core/metrics-http.js';
import { ANSWER_PATHS, SOURCES, answerPath, bytesBySource } from './answer-path.js';
import type { Outcome } from './handle.js';
import type { Packages } from './packages.js';

const CAUSES = ['stalled', 'engine', 'other'] as const;

export class ProxyMetrics {
  readonly registry: Registry;
  private readonly requests: Counter<'path'>;
  private readonly bytes: Counter<'source'>;
  private readonly fallbacks: Counter<'cause'>;
  private readonly restarts: Counter;

  constructor(engine: () => BtEngine | null, packages: () => Packages | null = () => null) {
    const registry = (this.registry = newRegistry());
    const registers = [registry];
    this.requests = new Counter({ name: `${PREFIX}proxy_requests_total`, help: 'requests by how they were answered: bittorrent, store, direct, tunnel, refused', labelNames: ['path'], registers });
    this.bytes = new Counter({ name: `${PREFIX}proxy_bytes_total`, help: 'body bytes sent to clients by where they came from: peers, mirror (for BitTorrent downloads), store, direct (relayed from the mirror)', labelNames: ['source'], registers });
    this.fallbacks = new Counter({ name: `${PREFIX}proxy_fallbacks_total`, help: 'BitTorrent downloads finished from the mirror, by cause: stalled, engine, other', labelNames: ['cause'], registers });
    this.restarts = new Counter({ name: `${PREFIX}proxy_engine_restarts_total`, help: 'times the BitTorrent engine was restarted after it died', registers });
    // One engine round trip and one walk of the store per scrape, whatever reads them.
    const session = perScrape(async () => (await engine()?.session().catch(() => null)) ?? null);
    const usage = perScrape(async () => (await packages()?.store.usage().catch(() => null)) ?? null);
    scrapedGauge(registry, `${PREFIX}proxy_engine_torrents`, 'torrents in the BitTorrent engine (downloading or seeding)', async () => (await session())?.torrents);
    scrapedGauge(registry, `${PREFIX}proxy_store_packages`, 'packages in the store (--store)', async () => (await usage())?.packages);
    scrapedGauge(registry, `${PREFIX}proxy_store_bytes`, 'bytes in the store, as --store-size counts them (torrent files included)', async () => (await usage())?.bytes);
    scrapedGauge(registry, `${PREFIX}proxy_seeding_torrents`, 'completed packages the proxy seeds to peers', () => packages()?.seedingNow);
    scrapedGauge(registry, `${PREFIX}proxy_peers`, 'peers connected to the BitTorrent engine', async () => (await session())?.peers);
    // The engine counts from its own start: a restarted one starts again at 0,
    // so the total so far is carried over (what it sent after the last scrape is lost with it).
    let carried = 0;
    let last = 0;
    let generation: number | null = null;
    scrapedCounter(registry, `${PREFIX}proxy_uploaded_bytes_total`, 'payload bytes uploaded to peers (across engine restarts)', async () => {
      const e = engine();
      const s = await session();
      if (!e || !s) return null;
      if (generation !== null && e.generation !== generation) carried += last;
      generation = e.generation;
      last = s.uploaded;
      return carried + last;
    });
    for (const path of ANSWER_PATHS) this.requests.inc({ path }, 0);
    for (const source of SOURCES) this.bytes.inc({ source }, 0);
    for (const cause of CAUSES) this.fallbacks.inc({ cause }, 0);
    this.restarts.inc(0);
  }

  engineRestarted(): void {
    this.restarts.inc();
  }

  /** One request, once its answer is over. */
  observe(o: Outcome): void {
    this.requests.inc({ path: answerPath(o) });
    const by = bytesBySource(o);
    for (const source of SOURCES) if (by[source]) this.bytes.inc({ source }, by[source]);
    if (o.sent?.fallback) this.fallbacks.inc({ cause: o.sent.cause ?? 'other' });
  }
}

/** The proxy is ready while its BitTorrent engine answers. */
export function proxyReady(engine: () => BtEngine | null): ReadyCheck {
  return async () => {
    const e = engine();
    if (!e) return 'BitTorrent engine not started';
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        e.session(),
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('no answer in 5 s')), 5000))),
      ]);
      return null;
    } catch (err) {
      return `BitTorrent engine does not answer: ${(err as Error).message}`;
    } finally {
      clearTimeout(timer);
    }
  };
}
