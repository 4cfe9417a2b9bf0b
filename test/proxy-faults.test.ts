// Faults, provoked on cue with a gate in front of the mirror that slows or
// stops aria2's web-seed requests: every response still completes with the
// mirror's bytes, and one download serves many clients.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { need } from './helpers/oracles.js';
import { until } from './helpers/poll.js';
import { startMirror } from './helpers/mirror.js';
import { startGate, startTestProxy, viaProxy } from './helpers/proxy.js';

t.test('the engine killed mid-download: the response still completes from the mirror', async (t) => {
  if (!need(t, 'aria2c')) return;
  const data = randomBytes(2_000_000);
  const m = await startMirror(t, { pub: { 'big.rpm': data } });
  const gate = await startGate(t, m.url);
  gate.policy = { kind: 'slow', bytesPerSecond: 400_000 };
  const p = await startTestProxy(t);
  const answer = viaProxy(p.url, `${gate.url}/pub/big.rpm`);
  t.ok(await until(20_000, () => gate.aria2Bytes > 300_000), 'BitTorrent under way');
  const gen = p.engine.generation;
  process.kill(p.engine.pid!, 'SIGKILL');
  const r = await answer;
  t.equal(r.status, 200);
  t.ok(r.body.equals(data), 'bytes identical to the mirror');
  const line = await p.line(/big\.rpm 200 bittorrent/);
  t.match(line, /fallback="(engine (restarted|not running)|aria2 [^"]*)"/, 'the fallback is logged');
  const [, tb, mb] = /torrent=(\d+) mirror=(\d+)/.exec(line)!;
  t.ok(Number(tb) > 0 && Number(mb) > 0 && Number(tb) + Number(mb) === data.length, `part from BitTorrent (${tb}), the rest by Range (${mb})`);
  await m.serve.waitFor(/GET \/pub\/big\.rpm 206/);
  t.ok(await until(10_000, () => p.engine.generation > gen), 'engine restarted');
  gate.policy = { kind: 'pass' };
  const again = await viaProxy(p.url, `${gate.url}/pub/big.rpm`);
  t.ok(again.body.equals(data), 'the restarted engine serves the next request');
  t.equal(await p.count(/big\.rpm 200 bittorrent .* mirror=0/, 1), 1, 'wholly over BitTorrent');
});

t.test('a stall: after --stall-timeout the rest comes by Range', async (t) => {
  if (!need(t, 'aria2c')) return;
  const data = randomBytes(1_000_000);
  const m = await startMirror(t, { pub: { 'big.rpm': data } });
  const gate = await startGate(t, m.url);
  gate.policy = { kind: 'hang' };
  const p = await startTestProxy(t, { stallMs: 500 });
  const r = await viaProxy(p.url, `${gate.url}/pub/big.rpm`);
  t.ok(r.body.equals(data), 'bytes identical to the mirror');
  t.match(await p.line(/big\.rpm 200 bittorrent/), /mirror=\d+ .*fallback="stalled 500 ms"/);
});

t.test('a stall with a mirror that ignores Range: the full answer is skipped up to where BitTorrent stopped', async (t) => {
  if (!need(t, 'aria2c')) return;
  const data = randomBytes(1_000_000);
  const m = await startMirror(t, { pub: { 'big.rpm': data } });
  const gate = await startGate(t, m.url);
  gate.policy = { kind: 'slow', bytesPerSecond: 300_000 };
  gate.ignoreRange = true;
  const p = await startTestProxy(t, { stallMs: 400 });
  const answer = viaProxy(p.url, `${gate.url}/pub/big.rpm`);
  t.ok(await until(20_000, () => gate.aria2Bytes > 100_000), 'BitTorrent under way');
  gate.policy = { kind: 'hang' };
  const r = await answer;
  t.ok(r.body.equals(data), 'bytes identical to the mirror');
  const line = await p.line(/big\.rpm 200 bittorrent/);
  t.match(line, /fallback="stalled 400 ms"/);
  t.ok(Number(/torrent=(\d+)/.exec(line)![1]) > 0, `part came over BitTorrent: ${line}`);
});

t.test('20 concurrent requests for one package: one download, 20 identical answers', async (t) => {
  if (!need(t, 'aria2c')) return;
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
  t.ok(gate.aria2Bytes < 2 * data.length, `the web seed sent ${gate.aria2Bytes} bytes for the one download`);
});
