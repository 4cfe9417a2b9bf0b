// Seeding again after a restart: a proxy restarted on the store of an
// earlier run gives the engine (libtorrent) the stored file's torrent
// without trusting the file, so libtorrent hashes every piece before it
// seeds; a second proxy then completes the package from it over BitTorrent
// with the mirror refusing pieces (opentracker on 127.0.0.1 finds the
// peers). A stored file that fails the check is dropped, not seeded: that
// is the proof the check happens. Seeding lasts what is left of the seed
// time since the package was stored (Packages.enforce, on a clock of the
// test's own).
import t, { type Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import bencode from 'bencode';
import { scratch } from './helpers/clients.js';
import { until } from './helpers/poll.js';
import { need, needBtEngine } from './helpers/oracles.js';
import { startOpentracker } from './helpers/opentracker.js';
import { writeTree } from './helpers/mirror.js';
import { startServe, request } from './helpers/server.js';
import { completesFromPeers, startGate, startTestProxy, viaProxy } from './helpers/proxy.js';
import type { AddOptions, BtEngine, BtListEntry } from '../src/core/bt-engine.js';
import { parsePackageTorrent } from '../src/proxy/lookup.js';
import { Packages } from '../src/proxy/packages.js';
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
  t.ok((await viaProxy(first.url, `${gate.url}/pub/big.rpm`)).body.equals(data), 'first run: from the mirror');
  await first.line(/big\.rpm 200 bittorrent/);
  await first.close();
}

/** The engine's entry for `ih`, if it has the torrent. */
async function inEngine(engine: BtEngine, ih: string): Promise<BtListEntry | undefined> {
  return (await engine.list().catch(() => [])).find((e) => e.ih === ih);
}

t.test('a restarted proxy seeds its stored package again: a second proxy completes from it with the mirror refusing pieces', async (t) => {
  if (!needBtEngine(t) || !need(t, 'opentracker')) return;
  const { dir, data, torrent, gate } = await setup(t, true);
  const store = join(dir, 'store');
  await fetchedAndStopped(t, store, gate, data);
  t.ok(existsSync(join(store, 'done', torrent.infoHash, 'big.rpm.torrent')), 'the torrent is kept beside the stored file');

  const restarted = await startTestProxy(t, { store, seedTimeMs: 10 * 60_000 });
  t.equal(await restarted.reseeded, 1, 'one stored package seeds again');
  t.match(restarted.log.join('\n'), /seeding 1 stored package\(s\) again/);
  const seed = await inEngine(restarted.engine, torrent.infoHash);
  t.ok(seed, 'the engine has the stored torrent');
  t.ok(seed?.seeding, 'and seeds it');
  const st = await restarted.engine.status(torrent.infoHash);
  t.equal(st.state, 'seeding');
  t.equal(st.numHave, Math.ceil(data.length / torrent.pieceLength), 'every piece found good in the stored file');
  t.equal(st.downloaded, 0, 'none of them downloaded');

  await completesFromPeers(t, gate, '/pub/big.rpm', data);
  t.ok((await restarted.engine.status(torrent.infoHash)).uploaded >= data.length, 'the restarted proxy sent the second one the package');
});

t.test('the engine killed: the restarted engine seeds the stored package again', async (t) => {
  if (!needBtEngine(t)) return;
  const { dir, data, torrent, gate } = await setup(t, false);
  const p = await startTestProxy(t, { store: join(dir, 'store'), seedTimeMs: 10 * 60_000 });
  t.ok((await viaProxy(p.url, `${gate.url}/pub/big.rpm`)).body.equals(data));
  await p.line(/big\.rpm 200 bittorrent/);
  const seeding = async () => (await inEngine(p.engine, torrent.infoHash))?.seeding === true;
  t.ok(await until(10_000, seeding), 'seeding after the download');
  const gen = p.engine.generation;
  const pid = p.engine.pid!;
  process.kill(pid, 'SIGKILL');
  t.ok(await until(10_000, () => p.engine.generation === gen + 1), 'the engine restarted');
  t.not(p.engine.pid, pid, 'as a new process');
  t.ok(await until(20_000, seeding), 'and seeds the stored package again');
  await p.line(/seeding 1 stored package\(s\) again/);
});

t.test('a stored file that fails the check is dropped, not seeded', async (t) => {
  if (!needBtEngine(t)) return;
  const { dir, data, torrent, gate } = await setup(t, false);
  const store = join(dir, 'store');
  await fetchedAndStopped(t, store, gate, data);
  const fd = openSync(join(store, 'done', torrent.infoHash, 'big.rpm'), 'r+');
  writeSync(fd, Buffer.from([data[500_000]! ^ 0xff]), 0, 1, 500_000);
  closeSync(fd);

  const restarted = await startTestProxy(t, { store, seedTimeMs: 10 * 60_000 });
  t.equal(await restarted.reseeded, 0, 'nothing seeds: the engine hashed the stored file and found the damaged piece');
  t.notOk(existsSync(join(store, 'done', torrent.infoHash)), 'the damaged file left the store');
  t.notOk(existsSync(join(store, 'partial', torrent.infoHash)), 'and its link for seeding');
  t.ok(await until(5000, async () => !(await inEngine(restarted.engine, torrent.infoHash))), 'the engine no longer has it');
  t.ok((await viaProxy(restarted.url, `${gate.url}/pub/big.rpm`)).body.equals(data), 'the next request is answered correctly');
  t.match(await restarted.line(/big\.rpm 200/), / 200 bittorrent /, 'by a new download, not from the store');
});

t.test('what is not seeded again: seed time over, a torrent that does not match its file', async (t) => {
  if (!needBtEngine(t)) return;
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
  t.notOk(await inEngine(late.engine, torrent.infoHash), 'the engine was not given it');
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
  t.notOk(await inEngine(none.engine, torrent.infoHash), 'the engine was not given it');
  await none.close();
  const again = await startTestProxy(t, { store, seedTimeMs: 3600_000 });
  t.equal(await again.reseeded, 1, 'the restored torrent seeds (its mtime is now)');
});

/**
 * A store holding one package (random bytes, 16K pieces), stored
 * `agoMs` ago, and Packages over it driving a stand-in engine that
 * records what it is told, on a clock the test moves.
 */
async function seedingClock(t: Test, agoMs: number, limits: { timeMs: number; ratio: number }) {
  const dir = scratch(t, 'seed-clock');
  const data = randomBytes(100_000);
  const pieceLength = 16 * 1024;
  const pieces: Buffer[] = [];
  for (let at = 0; at < data.length; at += pieceLength) pieces.push(createHash('sha1').update(data.subarray(at, at + pieceLength)).digest());
  const info = { length: data.length, name: 'p.rpm', 'piece length': pieceLength, pieces: Buffer.concat(pieces) };
  const ih = createHash('sha1').update(bencode.encode(info)).digest('hex');
  const store = await Store.open(dir, 1024 ** 3);
  mkdirSync(store.partialDir(ih));
  writeFileSync(join(store.partialDir(ih), 'p.rpm'), data);
  await store.commit(ih, 'p.rpm', Buffer.from(bencode.encode({ info })));
  const stored = new Date(Date.now() - agoMs);
  utimesSync(join(dir, 'done', ih, 'p.rpm.torrent'), stored, stored);

  const told: string[] = [];
  let uploaded = 0;
  const engine = {
    generation: 1,
    add: async (a: AddOptions) => {
      told.push(`add ${a.seed ? 'trusted' : 'checked'}`);
      return ih;
    },
    status: async () => ({ state: 'seeding', seeding: true, error: '' }),
    list: async () => [{ ih, uploaded, peers: 1, seeding: true, uploadRate: 0 }],
    remove: async (x: string) => void told.push(`remove ${x === ih ? 'it' : x}`),
  } as unknown as BtEngine;
  const clock = { now: Date.now() };
  const packages = new Packages(engine, store, { maxTorrents: 10, ...limits }, () => clock.now);
  t.teardown(() => packages.close());
  return { packages, told, clock, length: data.length, upload: (n: number) => (uploaded = n) };
}

t.test('a package seeds again for what is left of its seed time since it was stored', async (t) => {
  const { packages, told, clock } = await seedingClock(t, 60_000, { timeMs: 10 * 60_000, ratio: 0 });
  t.equal(await packages.reseed(), 1, 'stored a minute ago, seed time ten minutes: it seeds');
  t.same(told, ['add checked'], 'given to the engine to check, not trusted');
  clock.now += 8.5 * 60_000;
  await packages.enforce();
  t.same(told, ['add checked'], 'still seeding 9.5 minutes after it was stored');
  clock.now += 60_000;
  await packages.enforce();
  t.same(told, ['add checked', 'remove it'], 'stopped once 10 minutes have passed since it was stored');
});

t.test('a package stops seeding once it uploaded seed-ratio times its size', async (t) => {
  const { packages, told, clock, length, upload } = await seedingClock(t, 0, { timeMs: 3600_000, ratio: 2 });
  t.equal(await packages.reseed(), 1);
  upload(2 * length - 1);
  clock.now += 5000;
  await packages.enforce();
  t.same(told, ['add checked'], 'just under the ratio: still seeding');
  upload(2 * length);
  await packages.enforce();
  t.same(told, ['add checked', 'remove it'], 'ratio reached: stopped');
});
