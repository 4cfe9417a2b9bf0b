// The origin seeder (serve --seed) against real things: Debian's
// opentracker in whitelist mode, fed by serve alone, and a stock libtorrent
// client (python3-libtorrent, not our engine) that is given no web seed, so
// every byte it gets comes from the seeder over BitTorrent. The seeder
// reads the mirror's files where they are and never opens them for writing.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, readlinkSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, libtorrentDownload, scratch } from './helpers/clients.js';
import { writeTree } from './helpers/mirror.js';
import { need } from './helpers/oracles.js';
import { startOpentracker } from './helpers/opentracker.js';
import { request, startServe } from './helpers/server.js';
import { until } from './helpers/poll.js';
import { decodeTorrent } from './helpers/bencode.js';
import { sha1 } from '../src/core/metainfo.js';
import bencode from 'bencode';
import { connect } from 'node:net';

/** The pids of processes whose command line has all of `words`. */
function pidsWith(...words: string[]): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (words.every((w) => cmd.some((a) => a.includes(w)))) out.push(Number(d));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

/** How a process has `path` open or mapped: 'w' if anywhere for writing, 'r' if only for reading, '' if not at all. */
function accessTo(pid: number, path: string): string {
  let how = '';
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target = '';
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    if (target !== path) continue;
    const flags = parseInt(/^flags:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))![1]!, 8);
    how = (flags & 3) === 0 ? how || 'r' : 'w';
  }
  for (const line of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    if (!line.endsWith(` ${path}`)) continue;
    how = line.split(' ')[1]!.includes('w') ? 'w' : how || 'r';
  }
  return how;
}

t.test('serve --seed: a stock libtorrent with no web seed completes from the origin; serve fed the tracker', async (t) => {
  if (!need(t, 'libtorrent') || !need(t, 'opentracker')) return;
  const tracker = await startOpentracker(t);
  const dir = scratch(t, 'seeder');
  const data = randomBytes(3 * 1024 * 1024 + 12345);
  writeTree(join(dir, 'root'), { pub: { el9: { 'big-1.0.rpm': data } } });
  mkdirSync(join(dir, 'cache'));
  writeFileSync(join(dir, 'trackers'), `${tracker.http}\n`);
  const seedPort = await freePort();
  const srv = await startServe(t, {
    root: join(dir, 'root'),
    cacheDir: join(dir, 'cache'),
    trackers: join(dir, 'trackers'),
    files: true,
    args: ['--seed', '--seed-listen', `127.0.0.1:${seedPort}`, '--tracker-whitelist', tracker.whitelist, '--tracker-pid-file', tracker.pidFile, '--metrics-listen', '127.0.0.1:0'],
  });
  const metricsUrl = /metrics on (http:\/\/\S+)\/metrics/.exec(srv.stderr())![1]!;
  const seedFigures = async () => {
    const text = (await request(metricsUrl, '/metrics')).body.toString();
    const v = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
    return { torrents: v('pkgtorrent_seed_torrents'), uploaded: v('pkgtorrent_seed_uploaded_bytes_total'), peers: v('pkgtorrent_seed_peers') };
  };
  t.same(await seedFigures(), { torrents: 0, uploaded: 0, peers: 0 }, 'metrics: nothing seeded yet');
  const res = await request(srv.url, '/pub/torrent_service/simple/pub/el9/big-1.0.rpm');
  t.equal(res.status, 200);
  const ih = sha1(Buffer.from(bencode.encode(decodeTorrent(res.body).info))).toString('hex');
  t.match(readFileSync(tracker.whitelist, 'utf8'), new RegExp(`^${ih}$`, 'm'), 'serve appended the info hash to the whitelist');

  const torrent = join(dir, 'big.torrent');
  writeFileSync(torrent, res.body);
  const out = join(dir, 'out');
  mkdirSync(out);
  const got = await libtorrentDownload(t, torrent, out, { noWebSeed: true, timeoutMs: 60_000 });
  t.ok(got.ok, got.detail);
  t.same(got.webSeeds, [], 'the client had no web seed: the bytes came over BitTorrent');
  // The engine's figures lag a moment behind the transfer; the client, a seed now, has left.
  let figures = await seedFigures();
  await until(10_000, async () => (figures = await seedFigures()).uploaded === data.length && figures.peers === 0);
  t.same(figures, { torrents: 1, uploaded: data.length, peers: 0 }, 'metrics: one torrent seeded, every byte the client got uploaded by the origin, the client gone');
  // A peer that only shakes hands (BEP 3) is connected until it hangs up.
  const peer = connect(seedPort, '127.0.0.1');
  t.teardown(() => void peer.destroy());
  const answered = new Promise<Buffer>((resolve) => peer.once('data', resolve));
  peer.write(Buffer.concat([Buffer.from([19]), Buffer.from('BitTorrent protocol'), Buffer.alloc(8), Buffer.from(ih, 'hex'), Buffer.from('-XX0000-metricstest0')]));
  t.equal((await answered).subarray(28, 48).toString('hex'), ih, 'the seeder answered the handshake');
  t.ok(await until(10_000, async () => (figures = await seedFigures()).peers === 1), `metrics: one peer while it is connected (${figures.peers})`);
  peer.destroy();
  t.ok(await until(10_000, async () => (figures = await seedFigures()).peers === 0), 'and none once it left');
  t.ok(readFileSync(join(out, 'big-1.0.rpm')).equals(data), 'bytes identical to the mirror');
  t.notOk(srv.stderr().includes('GET /pub/el9/big-1.0.rpm'), 'nothing was fetched from the mirror over HTTP');

  const [engine] = pidsWith('pkgtorrent-bt', '--origin', `127.0.0.1:${seedPort}`);
  t.ok(engine, 'the origin engine runs');
  const file = join(dir, 'root/pub/el9/big-1.0.rpm');
  t.not(accessTo(engine!, file), 'w', 'the seeder never opened or mapped the file for writing');
});

t.test('a file replaced under the seeder stops seeding', async (t) => {
  if (!need(t, 'libtorrent')) return;
  const dir = scratch(t, 'seeder-change');
  writeTree(join(dir, 'root'), { pub: { 'a.rpm': randomBytes(200_000) } });
  mkdirSync(join(dir, 'cache'));
  const srv = await startServe(t, {
    root: join(dir, 'root'),
    cacheDir: join(dir, 'cache'),
    // A short idle time makes the seeder look at its torrents every second.
    args: ['--seed', '--seed-listen', `127.0.0.1:${await freePort()}`, '--seed-idle', '10s'],
  });
  t.equal((await request(srv.url, '/pub/torrent_service/simple/pub/a.rpm')).status, 200);
  writeFileSync(join(dir, 'root/pub/.a.new'), randomBytes(200_001));
  renameSync(join(dir, 'root/pub/.a.new'), join(dir, 'root/pub/a.rpm'));
  t.ok(await until(10_000, () => /stopped seeding [0-9a-f]{40} \(pub\/a\.rpm changed\)/.test(srv.stderr())), srv.stderr());
});
