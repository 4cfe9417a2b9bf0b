// When and which pieces a download asks the mirror's HTTP for. Peers come
// first: the mirror is asked only for what the swarm cannot give in time,
// a piece (or, alone, a short run) at a time, starting at a random place so
// that clients arriving together ask the mirror for different pieces.
//
//   alone    no peer can ever come (no tracker, no LPD/DHT), none connected
//            soon after the trackers answered, or none came within the
//            grace time: the mirror is the only source, asked for runs of
//            pieces so a lone client gets its full speed; from the lowest
//            missing piece when no peer can ever come (the answer then
//            streams), else from a random one (others may be starting at
//            this very moment);
//   stalled  peers gave less than a piece's worth for `stallMs`;
//   gaps     peers are connected (after the grace time) and no connected
//            peer has these pieces: someone has to bring them into the swarm.
// A piece the engine has or that is already being fetched from the mirror
// is never asked for; nor is one the engine is downloading from a peer,
// unless the peers stalled (a piece half-sent by a peer that then choked
// us would wait for it forever).
import type { PieceRun } from './mirror-pieces.js';

export interface SwarmView {
  pieces: number;
  /** The engine has it (verified). */
  have(i: number): boolean;
  /** The mirror is being asked for it, or it was handed to the engine. */
  busy(i: number): boolean;
  /** The engine is downloading it from a peer. */
  downloading(i: number): boolean;
  /** Some connected peer has it. */
  available(i: number): boolean;
  peers: number;
}

export interface FallbackInput {
  view: SwarmView;
  now: number;
  startedAt: number;
  /** When bytes from peers last grew (startedAt before any came). */
  lastPeerBytesAt: number;
  /** Whether any peer can be found at all (trackers, LPD or DHT). */
  peersPossible: boolean;
  /**
   * When the trackers answered naming at most one peer, if peers come from
   * them alone (no LPD or DHT). A tracker may name the asking peer itself
   * (opentracker does), so that one peer may be nobody: nobody connected
   * within ANSWER_GRACE_MS of the answer is. (An answer naming more waits
   * the grace time: under load, connecting to them takes longer than this.)
   */
  trackersAnsweredAt?: number;
  /** Requests to the mirror running now, and the most allowed at once. */
  inFlight: number;
  slots: number;
  graceMs: number;
  stallMs: number;
  /** Pieces in one request when alone. */
  aloneRun: number;
  random: () => number;
}

export type FallbackMode = 'alone' | 'stalled' | 'gaps' | 'peers';

/** How long after the trackers' answer a peer has to connect (on a LAN, a few milliseconds). */
export const ANSWER_GRACE_MS = 300;

export function fallbackMode(i: FallbackInput): FallbackMode {
  const started = i.now - i.startedAt;
  const answeredLongAgo = i.trackersAnsweredAt !== undefined && i.now - i.trackersAnsweredAt >= ANSWER_GRACE_MS;
  if (!i.peersPossible || (i.view.peers === 0 && (answeredLongAgo || started >= i.graceMs))) return 'alone';
  if (i.view.peers > 0 && i.now - Math.max(i.lastPeerBytesAt, i.startedAt) >= i.stallMs) return 'stalled';
  if (i.view.peers > 0 && started >= i.graceMs) return 'gaps';
  return 'peers';
}

/** The runs to ask the mirror for now (possibly none). */
export function mirrorRuns(i: FallbackInput): { mode: FallbackMode; runs: PieceRun[] } {
  const mode = fallbackMode(i);
  const runs: PieceRun[] = [];
  if (mode === 'peers') return { mode, runs };
  const v = i.view;
  const taken = new Set<number>();
  const wanted = (p: number) =>
    !v.have(p) && !v.busy(p) && !taken.has(p) && (mode === 'stalled' || !v.downloading(p)) && (mode !== 'gaps' || !v.available(p));
  const candidates: number[] = [];
  for (let p = 0; p < v.pieces; p++) if (wanted(p)) candidates.push(p);
  const maxRun = mode === 'alone' ? Math.max(1, i.aloneRun) : 1;
  for (let free = i.slots - i.inFlight; free > 0 && candidates.length > 0; free--) {
    // With no peer possible there is nobody to differ from: the file's
    // order, so the answer streams. Alone for now but with a tracker,
    // others may be starting this very moment: a random place.
    const first = mode === 'alone' && !i.peersPossible ? candidates[0]! : candidates[Math.floor(i.random() * candidates.length)]!;
    let count = 1;
    while (count < maxRun && first + count < v.pieces && wanted(first + count)) count++;
    for (let p = first; p < first + count; p++) taken.add(p);
    runs.push({ first, count });
    for (let k = candidates.length - 1; k >= 0; k--) if (taken.has(candidates[k]!)) candidates.splice(k, 1);
  }
  return { mode, runs };
}
