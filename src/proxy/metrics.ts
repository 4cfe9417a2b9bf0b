// The proxy's Prometheus metrics (pkgtorrent-proxy(8), METRICS): counted
// from each request's Outcome, the same figures its log line prints.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { BtEngine } from '../core/bt-engine.js';
import { PREFIX, newRegistry, type ReadyCheck } from '../core/metrics-http.js';
import { ANSWER_PATHS, answerPath } from './answer-path.js';
import type { Outcome } from './handle.js';

const CAUSES = ['stalled', 'engine', 'other'] as const;

export class ProxyMetrics {
  readonly registry: Registry;
  private readonly requests: Counter<'path'>;
  private readonly bytes: Counter<'source'>;
  private readonly fallbacks: Counter<'cause'>;
  private readonly restarts: Counter;

  constructor(engine: () => BtEngine | null) {
    const registry = (this.registry = newRegistry());
    const registers = [registry];
    this.requests = new Counter({ name: `${PREFIX}proxy_requests_total`, help: 'requests by how they were answered: bittorrent, store, direct, tunnel, refused', labelNames: ['path'], registers });
    this.bytes = new Counter({ name: `${PREFIX}proxy_bytes_total`, help: 'body bytes sent to clients by where they came from: peers, mirror, store', labelNames: ['source'], registers });
    this.fallbacks = new Counter({ name: `${PREFIX}proxy_fallbacks_total`, help: 'BitTorrent downloads finished from the mirror, by cause: stalled, engine, other', labelNames: ['cause'], registers });
    this.restarts = new Counter({ name: `${PREFIX}proxy_engine_restarts_total`, help: 'times the BitTorrent engine was restarted after it died', registers });
    new Gauge({
      name: `${PREFIX}proxy_engine_torrents`,
      help: 'torrents in the BitTorrent engine (downloading or seeding)',
      registers,
      async collect() {
        const s = await engine()?.session().catch(() => null);
        if (s) this.set(s.torrents);
      },
    });
    for (const path of ANSWER_PATHS) this.requests.inc({ path }, 0);
    for (const source of ['peers', 'mirror', 'store']) this.bytes.inc({ source }, 0);
    for (const cause of CAUSES) this.fallbacks.inc({ cause }, 0);
    this.restarts.inc(0);
  }

  engineRestarted(): void {
    this.restarts.inc();
  }

  /** One request, once its answer is over. */
  observe(o: Outcome): void {
    this.requests.inc({ path: answerPath(o) });
    const f = o.from;
    if (f) {
      if (f.peers) this.bytes.inc({ source: 'peers' }, f.peers);
      if (f.mirror) this.bytes.inc({ source: 'mirror' }, f.mirror);
      if (f.store) this.bytes.inc({ source: 'store' }, f.store);
    }
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
