// Peer to peer, proven: two proxies (own stores, own aria2c) and a real
// tracker (opentracker). The first fetches a package and seeds it; then the
// web seed stops answering aria2, and the second proxy still completes the
// package, over BitTorrent, from the first.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratch } from './helpers/clients.js';
import { need } from './helpers/oracles.js';
import { startOpentracker } from './helpers/opentracker.js';
import { writeTree } from './helpers/mirror.js';
import { startServe, request } from './helpers/server.js';
import { completesFromPeers, startGate, startTestProxy, viaProxy } from './helpers/proxy.js';
import { parsePackageTorrent } from '../src/proxy/lookup.js';

t.test('a second proxy completes from the first when the web seed is unreachable', async (t) => {
  if (!need(t, 'aria2c') || !need(t, 'opentracker')) return;
  const tracker = await startOpentracker(t);
  const dir = scratch(t, 'p2p');
  const data = randomBytes(1_000_000);
  writeTree(join(dir, 'root'), { pub: { 'big.rpm': data } });
  mkdirSync(join(dir, 'cache'));
  writeFileSync(join(dir, 'trackers'), `${tracker.http}\n`);
  const mirror = await startServe(t, { root: join(dir, 'root'), cacheDir: join(dir, 'cache'), files: true, trackers: join(dir, 'trackers') });
  const torrent = parsePackageTorrent((await request(mirror.url, '/pub/torrent_service/simple/pub/big.rpm')).body, 'big.rpm', data.length)!;
  await tracker.allow(torrent.infoHash);
  const gate = await startGate(t, mirror.url);

  const first = await startTestProxy(t);
  t.ok((await viaProxy(first.url, `${gate.url}/pub/big.rpm`)).body.equals(data), 'first proxy: from the web seed');
  await first.line(/big\.rpm 200 bittorrent/);

  await completesFromPeers(t, gate, '/pub/big.rpm', data);
});
