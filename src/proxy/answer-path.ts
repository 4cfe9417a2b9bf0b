// How a request was answered and where its bytes came from, read off its
// Outcome once: the metrics (metrics.ts) and the status page (status.ts)
// count the same things by the same names as the log line.
import type { Outcome } from './handle.js';

export const ANSWER_PATHS = ['bittorrent', 'store', 'direct', 'tunnel', 'refused'] as const;
export type AnswerPath = (typeof ANSWER_PATHS)[number];

/** The log line's path without its reason: "direct(why)" is direct; anything unforeseen counts as refused rather than as a new name. */
export function answerPath(o: Outcome): AnswerPath {
  if (o.path.startsWith('direct')) return 'direct';
  return (ANSWER_PATHS as readonly string[]).includes(o.path) ? (o.path as AnswerPath) : 'refused';
}

/**
 * Where the status page says bytes came from: the fleet's peers, the
 * mirror for a BitTorrent download (its HTTP pieces, its origin seeder, the
 * Range fallback), the proxy's store, or the mirror straight, as it
 * answered (direct answers and CONNECT tunnels: no BitTorrent involved).
 */
export const SOURCES = ['peers', 'mirror', 'store', 'direct'] as const;
export type Source = (typeof SOURCES)[number];
export type BySource = Record<Source, number>;

export function noBytes(): BySource {
  return { peers: 0, mirror: 0, store: 0, direct: 0 };
}

/** The bytes of one answer by source, as its log line counts them (a piece two sources sent counts for both). */
export function bytesBySource(o: Outcome): BySource {
  const b = noBytes();
  const path = answerPath(o);
  if (path === 'tunnel') b.direct = o.bytes;
  else if (path === 'direct') b.direct = o.from?.mirror ?? o.bytes;
  else if (o.from) {
    b.peers = o.from.peers;
    b.mirror = o.from.mirror;
    b.store = o.from.store;
  }
  return b;
}
