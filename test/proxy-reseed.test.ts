// Seeding again after a restart: a proxy restarted on the store of an
// earlier run has aria2 check the stored file against its torrent and seed
// it, so a second proxy completes the package from it over BitTorrent with
// the web seed refusing (opentracker on 127.0.0.1 finds the peers). A
// stored file that fails aria2's check is dropped, not seeded.
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { scratch } from './helpers/clients.js';
import { until } from './helpers/poll.js';
import { need } from './helpers/oracles.js';
import { startOpentracker } from './helpers/opentracker.js';
import { writeTree } from './helpers/mirror.js';
import { startServe, request } from './helpers/server.js';
import { completesFromPeers, startGate, startTestProxy, viaProxy } from './helpers/proxy.js';
import { parsePackageTorrent } from '../src/proxy/lookup.js';
import { Store } from '../src/proxy/store.js';

async function setup(t: Test, withTracker: boolean) {
  const dir = scratch(t, 'reseed');
  const data = randomBytes(1_000_000);
  writeTree(join(dir, 'root'), { pub: { 'big.rpm': data } });
  mkdirSync(join(dir, 'cache'));
  const tracker = withTracker ? await startOpentracker(t) : null;
  writeFileSync(join(dir, 'trackers'), tracker ? `${tracker.http}\n` : '');
  const mirror = await startServe(t, { root: join(dir, 'root'), cacheDir: join(dir, 'cache'), files: true, trackers: join(dir, 'trackers') });
  const torrent = parsePackageTorrent((await request(mirror.url, '/pub/torrent_service/simple/pub/big.rpm')).body, 'big.rpm', data.length)!;
  await tracker?.allow(torrent.infoHash);
  const gate = await startGate(t, mirror.url);
  return { dir, data, torrent, gate };
}

/** A proxy run on `store` that fetched the package and was stopped. */
async function fetchedAndStopped(t: Test, store: string, gate: { url: string }, data: Buffer): Promise<void> {
  const first = await startTestProxy(t, { store });
  t.ok((await viaProxy(first.url, `${gate.url}/pub/big.rpm`)).body.equals(data), 'first run: from the web seed');
  await first.line(/big\.rpm 200 bittorrent/);
  await first.close();
}

t.test('a restarted proxy seeds its stored package again: a second proxy completes from it with the web seed refusing', async (t) => {
  if (!need(t, 'aria2c') || !need(t, 'opentracker')) return;
  const { dir, data, torrent, gate } = await setup(t, true);
  const store = join(dir, 'store');
  await fetchedAndStopped(t, store, gate, data);
  t.ok(existsSync(join(store, 'done', torrent.infoHash, 'big.rpm.torrent')), 'the torrent is kept beside the stored file');

  const restarted = await startTestProxy(t, { store, seedTimeMs: 10 * 60_000 });
  t.equal(await restarted.reseeded, 1, 'one stored package seeds again');
  t.match(restarted.log.join('\n'), /seeding 1 stored package\(s\) again/);
  const active = await restarted.engine.call<Array<{ gid: string; infoHash: string; seeder: string }>>('aria2.tellActive', ['gid', 'infoHash', 'seeder']);
  const seed = active.find((a) => a.infoHash === torrent.infoHash);
  t.ok(seed, 'aria2 has the stored torrent');
  t.equal(seed!.seeder, 'true', 'and seeds it');
  const opt = await restarted.engine.getOption(seed!.gid);
  t.equal(opt['check-integrity'], 'true', 'aria2 checked the stored file before seeding it');
  const minutes = Number(opt['seed-time']);
  t.ok(minutes > 9 && minutes <= 10, `seeds for what is left of the seed time since it was stored (${minutes} min)`);

  await completesFromPeers(t, gate, '/pub/big.rpm', data);
});

t.test('aria2 killed: the restarted aria2 seeds the stored package again', async (t) => {
  if (!need(t, 'aria2c')) return;
  const { dir, data, torrent, gate } = await setup(t, false);
  const p = await startTestProxy(t, { store: join(dir, 'store'), seedTimeMs: 10 * 60_000 });
  t.ok((await viaProxy(p.url, `${gate.url}/pub/big.rpm`)).body.equals(data));
  await p.line(/big\.rpm 200 bittorrent/);
  const seeding = async () =>
    (await p.engine.call<Array<{ infoHash: string; seeder: string }>>('aria2.tellActive', ['infoHash', 'seeder']).catch(() => [])).some(
      (a) => a.infoHash === torrent.infoHash && a.seeder === 'true',
    );
  t.ok(await until(10_000, seeding), 'seeding after the download');
  const gen = p.engine.generation;
  process.kill(p.engine.pid!, 'SIGKILL');
  t.ok(await until(10_000, () => p.engine.generation === gen + 1), 'aria2 restarted');
  t.ok(await until(20_000, seeding), 'and seeds the stored package again');
  await p.line(/seeding 1 stored package\(s\) again/);
});

t.test('a stored file that fails the check is dropped, not seeded', async (t) => {
  if (!need(t, 'aria2c')) return;
  const { dir, data, torrent, gate } = await setup(t, false);
  const store = join(dir, 'store');
  await fetchedAndStopped(t, store, gate, data);
  const fd = openSync(join(store, 'done', torrent.infoHash, 'big.rpm'), 'r+');
  writeSync(fd, Buffer.from([data[500_000]! ^ 0xff]), 0, 1, 500_000);
  closeSync(fd);

  const restarted = await startTestProxy(t, { store, seedTimeMs: 10 * 60_000 });
  t.equal(await restarted.reseeded, 0, 'nothing seeds');
  t.notOk(existsSync(join(store, 'done', torrent.infoHash)), 'the damaged file left the store');
  const active = await restarted.engine.call<Array<{ infoHash: string }>>('aria2.tellActive', ['infoHash']);
  t.notOk(active.some((a) => a.infoHash === torrent.infoHash), 'aria2 no longer has it');
  t.ok((await viaProxy(restarted.url, `${gate.url}/pub/big.rpm`)).body.equals(data), 'the next request is answered correctly');
  t.match(await restarted.line(/big\.rpm 200/), / 200 bittorrent /, 'by a new download, not from the store');
});

t.test('what is not seeded again: seed time over, a torrent that does not match its file', async (t) => {
  if (!need(t, 'aria2c')) return;
  const { dir, data, torrent, gate } = await setup(t, false);
  const store = join(dir, 'store');
  await fetchedAndStopped(t, store, gate, data);
  const tfile = join(store, 'done', torrent.infoHash, 'big.rpm.torrent');
  const stored = await (await Store.open(store, 1024 ** 3)).storedTorrents();
  t.same(stored.map((s) => s.torrent.infoHash), [torrent.infoHash], 'the stored torrent validates');

  // Stored two hours ago, seed time one hour.
  const old = new Date(Date.now() - 2 * 3600_000);
  utimesSync(tfile, old, old);
  const late = await startTestProxy(t, { store, seedTimeMs: 3600_000 });
  t.equal(await late.reseeded, 0, 'seed time over: not seeded');
  await late.close();

  // Another file's torrent under this info hash: not used.
  const good = readFileSync(tfile);
  writeFileSync(tfile, good.subarray(0, good.length - 1));
  t.same(await (await Store.open(store, 1024 ** 3)).storedTorrents(), [], 'a truncated torrent is not used');
  writeFileSync(tfile, Buffer.concat([Buffer.from(good.toString('latin1').replace('4:name7:big.rpm', '4:name7:big.rpn'), 'latin1')]));
  t.same(await (await Store.open(store, 1024 ** 3)).storedTorrents(), [], 'a torrent naming another file is not used');
  writeFileSync(tfile, good);
  // seed-max-torrents 0: seeding is off, so nothing is re-added either.
  const none = await startTestProxy(t, { store, seedTimeMs: 3600_000, seedMaxTorrents: 0 });
  t.equal(await none.reseeded, 0, 'seed-max-torrents 0: not seeded');
  const idle = await none.engine.call<Array<{ infoHash: string }>>('aria2.tellActive', ['infoHash']);
  t.notOk(idle.some((a) => a.infoHash === torrent.infoHash), 'aria2 was not given it');
  await none.close();
  const again = await startTestProxy(t, { store, seedTimeMs: 3600_000 });
  t.equal(await again.reseeded, 1, 'the restored torrent seeds (its mtime is now)');
});
