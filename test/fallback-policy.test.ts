// When the proxy asks the mirror's HTTP for pieces, and which: peers first,
// the mirror for what the swarm cannot give (src/proxy/fallback-policy.ts).
import t from 'tap';
import { fallbackMode, mirrorRuns, type FallbackInput, type SwarmView } from '../src/proxy/fallback-policy.js';

function view(o: Partial<SwarmView> & { pieces: number }): SwarmView {
  return { have: () => false, busy: () => false, downloading: () => false, available: () => false, peers: 0, ...o };
}

function input(o: Partial<FallbackInput> & { view: SwarmView }): FallbackInput {
  return {
    now: 10_000,
    startedAt: 10_000,
    lastPeerBytesAt: 10_000,
    peersPossible: true,
    inFlight: 0,
    slots: 2,
    graceMs: 1500,
    stallMs: 3000,
    aloneRun: 4,
    random: () => 0.5,
    ...o,
  };
}

t.test('which way the mirror is asked', async (t) => {
  const v = view({ pieces: 8 });
  t.equal(fallbackMode(input({ view: v, peersPossible: false })), 'alone', 'no peer can ever come: at once');
  t.equal(fallbackMode(input({ view: v })), 'peers', 'a tracker may name peers: wait for the grace time');
  t.equal(fallbackMode(input({ view: v, trackersAnsweredAt: 9_900 })), 'peers', 'the trackers just answered: a peer may be connecting');
  t.equal(fallbackMode(input({ view: v, trackersAnsweredAt: 9_600 })), 'alone', 'nobody connected 300 ms after their answer');
  t.equal(fallbackMode(input({ view: v, now: 11_500 })), 'alone', 'none came within the grace time');
  const connected = view({ pieces: 8, peers: 3 });
  t.equal(fallbackMode(input({ view: connected, now: 11_000 })), 'peers', 'peers connected, inside the grace time');
  t.equal(fallbackMode(input({ view: connected, now: 11_500, lastPeerBytesAt: 11_400 })), 'gaps', 'peers giving bytes: only what none of them has');
  t.equal(fallbackMode(input({ view: connected, now: 14_000, lastPeerBytesAt: 10_500 })), 'stalled', 'nothing from peers for the stall time');
});

t.test('peers first: nothing is asked while the swarm supplies', async (t) => {
  const v = view({ pieces: 8, peers: 3, available: () => true });
  t.same(mirrorRuns(input({ view: v, now: 12_000, lastPeerBytesAt: 11_900 })).runs, [], 'every piece is with a peer');
  const gaps = mirrorRuns(input({ view: view({ pieces: 8, peers: 3, available: (i) => i !== 5 }), now: 12_000, lastPeerBytesAt: 11_900 }));
  t.same(gaps, { mode: 'gaps', runs: [{ first: 5, count: 1 }] }, 'only the piece no peer has, alone in its request');
});

t.test('alone with a tracker: runs from a random piece (others may start now)', async (t) => {
  const r = mirrorRuns(input({ view: view({ pieces: 100 }), now: 12_000, random: () => 0.5 }));
  t.same(r, { mode: 'alone', runs: [{ first: 50, count: 4 }, { first: 48, count: 2 }] }, 'the second run stops where the first began');
});

t.test('alone with no peer possible: runs in file order, never what is had, fetched or handed in', async (t) => {
  const v = view({ pieces: 10, have: (i) => i === 0, busy: (i) => i === 2 });
  const r = mirrorRuns(input({ view: v, peersPossible: false }));
  t.same(r.runs, [{ first: 1, count: 1 }, { first: 3, count: 4 }], 'from the lowest missing piece, a run stops at a busy piece');
  t.same(mirrorRuns(input({ view: v, peersPossible: false, inFlight: 2 })).runs, [], 'no free slot');
  t.same(mirrorRuns(input({ view: view({ pieces: 3, have: () => true }), peersPossible: false })).runs, [], 'all had');
});

t.test('stalled: a piece stuck half-sent by a peer is taken from the mirror; in gaps it is not', async (t) => {
  const stuck = view({ pieces: 4, peers: 2, have: (i) => i !== 3, downloading: (i) => i === 3, available: () => false });
  t.same(mirrorRuns(input({ view: stuck, now: 14_000, lastPeerBytesAt: 10_500 })).runs, [{ first: 3, count: 1 }]);
  t.same(mirrorRuns(input({ view: stuck, now: 12_000, lastPeerBytesAt: 11_900 })).runs, [], 'gaps leave it to its peer');
});

t.test('clients arriving together start at different pieces', async (t) => {
  const v = view({ pieces: 100, peers: 3 });
  const firsts = new Set<number>();
  for (const r of [0, 0.13, 0.37, 0.61, 0.89]) {
    const runs = mirrorRuns(input({ view: v, now: 12_000, lastPeerBytesAt: 11_900, slots: 1, random: () => r })).runs;
    firsts.add(runs[0]!.first);
  }
  t.equal(firsts.size, 5, 'the start follows the random draw');
});
