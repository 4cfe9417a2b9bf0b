// Peer to peer, proven: two proxies (own stores, own engines) and a real
// tracker (opentracker). The first fetches a package and seeds it; then the
// mirror refuses every request for pieces, and the second proxy still
// completes the package, over BitTorrent, from the first: its log counts
// every byte as the peers' and none as the mirror's.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratch } from './helpers/clients.js';
import { until } from './helpers/poll.js';
import { need, needBtEngine } from './helpers/oracles.js';
import { startOpentracker } from './helpers/opentracker.js';
import { writeTree } from './helpers/mirror.js';
import { startServe, request } from './helpers/server.js';
import { completesFromPeers, startGate, startTestProxy, viaProxy } from './helpers/proxy.js';
import { parsePackageTorrent } from '../src/proxy/lookup.js';

t.test('a second proxy completes from the first when the mirror refuses pieces', async (t) => {
  if (!needBtEngine(t) || !need(t, 'opentracker')) return;
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
  t.ok((await viaProxy(first.url, `${gate.url}/pub/big.rpm`)).body.equals(data), 'first proxy: from the mirror, alone in the swarm');
  t.match(await first.line(/big\.rpm 200 bittorrent/), new RegExp(`peers=0 mirror=${data.length} store=0 `), 'every piece from the mirror');
  t.notOk(first.log.some((l) => /name no tracker/.test(l)), 'the torrent names a tracker: no warning');
  t.ok(await until(5000, async () => (await first.engine.list()).some((e) => e.ih === torrent.infoHash && e.seeding)), 'and it seeds the package');

  await completesFromPeers(t, gate, '/pub/big.rpm', data);
});
