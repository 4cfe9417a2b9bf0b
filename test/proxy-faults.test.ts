// Faults, provoked on cue with a gate in front of the mirror that slows or
// stops the proxy's requests for pieces (told apart by their User-Agent):
// every response still completes with the mirror's bytes, finished by the
// answer's Range fallback when BitTorrent cannot, and one download serves
// many clients.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { needBtEngine } from './helpers/oracles.js';
import { until } from './helpers/poll.js';
import { startMirror } from './helpers/mirror.js';
import { rangeStart, sources, startGate, startTestProxy, viaProxy, type Gate, type GatePolicy, type GateRequest } from './helpers/proxy.js';

/** GET through the proxy, counting the body bytes as they arrive. */
function countedGet(proxy: string, url: string): { received: () => number; done: Promise<{ status: number; body: Buffer }> } {
  const p = new URL(proxy);
  let received = 0;
  const done = new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
    const req = httpRequest({ host: p.hostname, port: p.port, path: url, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        received += c.length;
        chunks.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode!, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
  return { received: () => received, done };
}

/** The answer's Range fallback as the gate saw it: not a request for pieces, with an open-ended Range. */
function rangeFallbacks(gate: Gate, path: string): string[] {
  return gate.requests.filter((r) => r.path === path && !r.pieces && r.range).map((r) => r.range);
}

/**
 * Only the run of pieces from the file's first byte gets through; every
 * other request for pieces is refused. Pieces come in any order (the
 * proxy asks the mirror for runs at random places), so this is how a test
 * makes sure the client gets a known part of the file over BitTorrent and
 * then nothing more.
 */
function onlyTheFirstRun(r: GateRequest): GatePolicy {
  return rangeStart(r) === 0 ? { kind: 'pass' } : { kind: 'refuse' };
}

/** Bytes in the run of pieces from the file's start that the gate let through (0 before it was asked for). */
function firstRun(gate: Gate): number {
  const r = gate.requests.find((q) => q.pieces && rangeStart(q) === 0);
  return r ? Number(/-(\d+)$/.exec(r.range)![1]) + 1 : 0;
}

t.test('the engine killed mid-download: the response still completes from the mirror', async (t) => {
  if (!needBtEngine(t)) return;
  const data = randomBytes(2_000_000);
  // 256K pieces: 8 of them, the runs the proxy asks for (up to 4 pieces when alone) are few.
  const m = await startMirror(t, { pub: { 'big.rpm': data } }, '256K');
  const gate = await startGate(t, m.url);
  gate.policy = onlyTheFirstRun;
  const p = await startTestProxy(t, { stallMs: 60_000 });
  const answer = countedGet(p.url, `${gate.url}/pub/big.rpm`);
  t.ok(await until(20_000, () => firstRun(gate) > 0 && answer.received() === firstRun(gate)), 'BitTorrent under way: the client has the first run');
  const verified = firstRun(gate);
  const gen = p.engine.generation;
  process.kill(p.engine.pid!, 'SIGKILL');
  const r = await answer.done;
  t.equal(r.status, 200);
  t.ok(r.body.equals(data), 'bytes identical to the mirror');
  const line = await p.line(/big\.rpm 200 bittorrent/);
  t.match(line, /fallback="engine (restarted|not running|exited)"/, 'the fallback is logged');
  const s = sources(line);
  t.equal(s.bytes, data.length);
  t.equal(s.range, data.length - verified, `the first run from verified pieces (${verified}), the rest by Range`);
  t.ok(s.mirror >= data.length && s.peers === 0 && s.store === 0, 'all of it from the mirror: pieces and the Range fallback');
  t.same(rangeFallbacks(gate, '/pub/big.rpm'), [`bytes=${verified}-`], 'one Range request, from where the verified bytes ended');
  t.ok(await until(10_000, () => p.engine.generation > gen), 'engine restarted');
  gate.policy = { kind: 'pass' };
  const again = await viaProxy(p.url, `${gate.url}/pub/big.rpm`);
  t.ok(again.body.equals(data), 'the restarted engine serves the next request');
  t.equal(await p.count(/big\.rpm 200 bittorrent/, 2), 2);
  const next = p.log.filter((l) => /big\.rpm 200 bittorrent/.test(l))[1]!;
  t.match(next, /bytes=2000000 \d+ms peers=0 mirror=2000000 store=0 /, 'every piece from the mirror, once');
  t.notMatch(next, /range=|fallback=/, 'wholly through the engine, no Range fallback');
});

t.test('a stall: after --stall-timeout the rest comes by Range', async (t) => {
  if (!needBtEngine(t)) return;
  const data = randomBytes(1_000_000);
  const m = await startMirror(t, { pub: { 'big.rpm': data } });
  const gate = await startGate(t, m.url);
  gate.policy = { kind: 'hang' };
  const p = await startTestProxy(t, { stallMs: 500 });
  const r = await viaProxy(p.url, `${gate.url}/pub/big.rpm`);
  t.ok(r.body.equals(data), 'bytes identical to the mirror');
  const line = await p.line(/big\.rpm 200 bittorrent/);
  t.match(line, /range=1000000 .*fallback="stalled 500 ms"/, 'no piece came: all of it by Range');
  t.same(rangeFallbacks(gate, '/pub/big.rpm'), ['bytes=0-']);
});

t.test('a stall with a mirror that ignores Range: the full answer is skipped up to where BitTorrent stopped', async (t) => {
  if (!needBtEngine(t)) return;
  const data = randomBytes(2_000_000);
  const m = await startMirror(t, { pub: { 'big.rpm': data } }, '256K');
  const gate = await startGate(t, m.url);
  gate.policy = onlyTheFirstRun;
  gate.ignoreRange = true;
  // Long enough for the first run to be asked for (the proxy picks runs at random), short enough to wait.
  const p = await startTestProxy(t, { stallMs: 2000 });
  const r = await viaProxy(p.url, `${gate.url}/pub/big.rpm`);
  t.ok(r.body.equals(data), 'bytes identical to the mirror');
  const line = await p.line(/big\.rpm 200 bittorrent/);
  t.match(line, /fallback="stalled 2000 ms"/);
  const s = sources(line);
  t.ok(firstRun(gate) > 0, `the first run went through (${firstRun(gate)} bytes)`);
  t.equal(s.bytes - s.range, firstRun(gate), `the first run came over BitTorrent, the rest from the full answer: ${line}`);
  t.same(rangeFallbacks(gate, '/pub/big.rpm'), [`bytes=${firstRun(gate)}-`], 'the Range asked for (dropped by the gate) started there');
});

t.test('20 concurrent requests for one package: one download, 20 identical answers', async (t) => {
  if (!needBtEngine(t)) return;
  const data = randomBytes(1_500_000);
  const m = await startMirror(t, { pub: { 'big.rpm': data } });
  const gate = await startGate(t, m.url);
  // Slow enough that all 20 arrive while the download runs.
  gate.policy = { kind: 'slow', bytesPerSecond: 1_000_000 };
  const p = await startTestProxy(t);
  const answers = await Promise.all(Array.from({ length: 20 }, () => viaProxy(p.url, `${gate.url}/pub/big.rpm`)));
  t.ok(answers.every((a) => a.status === 200 && a.body.equals(data)), '20 identical answers');
  t.equal(p.packages.started, 1, 'one download');
  t.equal(await p.count(/big\.rpm 200 (bittorrent|store) .*bytes=1500000/, 20), 20);
  t.notOk(p.log.some((l) => /range=|fallback=/.test(l)), 'no answer needed the Range fallback');
  t.equal(gate.pieceBytes, data.length, 'the mirror sent each piece once, for the one download');
});
