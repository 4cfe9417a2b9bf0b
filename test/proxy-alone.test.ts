// A package no peer can ever give (its torrent names no tracker, and LPD and
// DHT are off) comes from the mirror's HTTP, written to the file by the
// proxy itself: the engine is not handed its pieces (no add_piece), since
// nobody could ask it for them, yet it seeds the finished file as any
// other. With a tracker the same download hands each piece to the engine,
// which is what makes the first half of the test mean something: the
// engine's stdin is recorded in both cases.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratch } from './helpers/clients.js';
import { need, needBtEngine } from './helpers/oracles.js';
import { startOpentracker } from './helpers/opentracker.js';
import { writeTree } from './helpers/mirror.js';
import { until } from './helpers/poll.js';
import { request, startServe } from './helpers/server.js';
import { startTestProxy, viaProxy } from './helpers/proxy.js';
import { parsePackageTorrent } from '../src/proxy/lookup.js';

/** A mirror of one 3 MB package, with a tracker or none; and the engine's stdin, recorded by tee. */
async function run(t: Test, withTracker: boolean) {
  const dir = scratch(t, 'alone');
  const data = randomBytes(3_000_000);
  writeTree(join(dir, 'root'), { pub: { 'big.rpm': data } });
  mkdirSync(join(dir, 'cache'));
  const tracker = withTracker ? await startOpentracker(t) : null;
  writeFileSync(join(dir, 'trackers'), tracker ? `${tracker.http}\n` : '');
  const mirror = await startServe(t, { root: join(dir, 'root'), cacheDir: join(dir, 'cache'), files: true, trackers: join(dir, 'trackers'), pieceLength: '256K' });
  const torrent = parsePackageTorrent((await request(mirror.url, '/pub/torrent_service/simple/pub/big.rpm')).body, 'big.rpm', data.length)!;
  await tracker?.allow(torrent.infoHash);
  const requests = join(dir, 'engine-stdin');
  const p = await startTestProxy(t, {
    // The engine as usual, its requests copied to a file on their way in.
    spawn: (cmd, args, opts) => spawn('/bin/sh', ['-c', 'tee "$0" | "$@"', requests, cmd, ...args], opts),
  });
  t.ok((await viaProxy(p.url, `${mirror.url}/pub/big.rpm`)).body.equals(data), 'bytes identical to the mirror');
  const line = await p.line(/big\.rpm 200 bittorrent/);
  const stdin = () => readFileSync(requests, 'latin1');
  const seeding = () => p.engine.list().then((l) => l.some((e) => e.ih === torrent.infoHash && e.seeding), () => false);
  return { line, stdin, seeding, p, data };
}

t.test('no peer possible: the proxy writes the pieces itself, and the engine seeds the finished file', async (t) => {
  if (!needBtEngine(t)) return;
  const { line, stdin, seeding, data } = await run(t, false);
  t.match(line, new RegExp(`peers=0 mirror=${data.length} store=0 http=alone:${data.length} `), 'every byte from the mirror, once');
  t.ok(await until(10_000, seeding), 'the engine seeds it once stored');
  t.match(stdin(), /"op":"add"/, 'the engine was told of the torrent');
  t.notMatch(stdin(), /"op":"add_piece"/, 'and handed no piece');
});

t.test('a tracker: the same pieces go to the engine, for peers', async (t) => {
  if (!needBtEngine(t) || !need(t, 'opentracker')) return;
  const { line, stdin, seeding, data } = await run(t, true);
  t.match(line, new RegExp(`peers=0 mirror=${data.length} store=0 http=alone:${data.length} `));
  t.ok(await until(10_000, seeding), 'seeding');
  // 3 MB in 256 KiB pieces: 12 pieces, each handed over (its raw bytes follow the line).
  t.equal(stdin().match(/"op":"add_piece"/g)?.length, 12, 'every piece handed to the engine');
});
