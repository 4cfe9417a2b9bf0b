// The fleet story, end to end, on a small LAN of network namespaces
// (helpers/fleet.mjs): one mirror host whose uplink is limited, running
// Debian's opentracker in whitelist mode with no package's hash on its
// whitelist, and `pkgtorrent serve` (after `pkgtorrent hash`) told to feed
// that whitelist and signal the tracker itself; four client hosts, each
// with `pkgtorrent proxy` (libtorrent engine, own store), fetching one 16 MiB
// package at the same moment with curl through their proxy.
//
// What it proves, by counting bytes on the mirror's eth0 (never by time: the
// machine may be busy):
//   - with the origin seeder (serve --seed): every copy is identical to the
//     source, each proxy got the package over BitTorrent and accounts for
//     every byte (peers + mirror), and the mirror sent at most 1.5 times the
//     file for four clients: the fleet shared it, where four direct
//     downloads cost four times;
//   - without the seeder: copies identical, and the mirror sent no more than
//     four direct downloads would;
//   - in both, the tracker accepted the package because serve whitelisted
//     the info hash it handed out (the test never touches the whitelist).
// Needs root (namespaces), opentracker, curl and python3-libtorrent: skipped
// loudly without them, failed when CI is set.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { canCreateFleet, createFleet, sha256File, startTracker, type Fleet, type Handle } from './helpers/fleet.mjs';
import { BIN, nodeCommand } from './helpers/cli.js';
import { need, needBtEngine } from './helpers/oracles.js';
import { sources } from './helpers/proxy.js';
import { parsePackageTorrent } from '../src/proxy/lookup.js';

const CLIENTS = 4;
const MIB = 1024 * 1024;
const SIZE = 16 * MIB;
const UPLINK_MBIT = 50;
const PKG = 'fedora/Packages/bigpkg-1.0-1.x86_64.rpm';
const PKG_NAME = PKG.slice(PKG.lastIndexOf('/') + 1);
const PKG_LINE = new RegExp(`${PKG_NAME.replace(/\./g, '\\.')} \\d{3} `);
// Generous: at 50 Mbit/s even four direct copies take about 11 s.
const FETCH_TIMEOUT_S = 60;
// Bytes already on their way when the last client completes (socket
// buffers, the tbf queue) still leave the mirror: part of the cost.
const SETTLE_MS = 1000;

let fleetCheck: { ok: boolean; why: string } | undefined;

/** Same contract as need(): true when a fleet can be built here, else a loud skip (a failure with CI set). */
function needFleet(t: Test): boolean {
  fleetCheck ??= canCreateFleet();
  if (fleetCheck.ok) return true;
  const msg = `cannot build the namespace LAN: ${fleetCheck.why}`;
  if (process.env.CI) t.fail(`${msg} (required when CI is set)`);
  else {
    process.stderr.write(`# SKIP ${msg}\n`);
    t.pass(msg, { skip: msg });
  }
  return false;
}

/** `node BIN args` as fleet.spawn's command and arguments, without tap's loaders (see nodeCommand). */
function pkgtorrent(args: string[]): [string, string[]] {
  return nodeCommand(BIN, args);
}


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A fresh fleet with the package, the tracker and serve (`serveArgs` added
 * to its flags), its proxies ready; then every client fetches the package
 * at once. Asserts what holds in both scenarios and returns the mirror's
 * egress over the file size.
 */
async function fleetFetch(t: Test, tag: string, serveArgs: string[]): Promise<number> {
  const fleet: Fleet = await createFleet({ clients: CLIENTS, uplinkMbit: UPLINK_MBIT, tag, lifetimeS: 600 });
  const proxies = new Map<string, Handle>();
  t.teardown(async () => {
    // The logs go with the fleet's directory: keep them when something is
    // wrong, or when an engine (a proxy's, serve's seeder) died on the way,
    // which the proxies may have covered up by going to the mirror.
    const logs = join(fleet.dir, 'logs');
    const crashed = readdirSync(logs).filter((f) => /BitTorrent engine exited/.test(readFileSync(join(logs, f), 'utf8')));
    if (!t.passing() || crashed.length) {
      const keep = mkdtempSync(join(tmpdir(), `pkgtorrent-swarm-${tag}-logs-`));
      cpSync(logs, keep, { recursive: true });
      process.stderr.write(`# swarm ${tag}: ${crashed.length ? `a BitTorrent engine exited (${crashed.join(', ')}); ` : ''}logs of every process kept in ${keep}\n`);
    }
    await fleet.destroy();
  });

  const tracker = await startTracker(fleet);
  const root = join(fleet.dir, 'root');
  const cache = join(fleet.dir, 'cache');
  const trackers = join(fleet.dir, 'trackers');
  mkdirSync(join(root, dirname(PKG)), { recursive: true });
  mkdirSync(cache);
  writeFileSync(trackers, `${tracker.announce}\n`);
  const sum = createHash('sha256');
  const fd = openSync(join(root, PKG), 'w');
  const chunk = Buffer.alloc(MIB);
  for (let i = 0; i < SIZE / MIB; i++) {
    randomFillSync(chunk);
    sum.update(chunk);
    writeSync(fd, chunk);
  }
  closeSync(fd);
  const sha256 = sum.digest('hex');
  const hexLines = (text: string) => text.split('\n').map((l) => l.trim()).filter((l) => /^[0-9a-f]{40}$/.test(l));
  const whitelistAtStart = hexLines(readFileSync(tracker.whitelistPath, 'utf8'));

  const [hashCmd, hashArgs] = pkgtorrent(['hash', '--root', root, '--cache-dir', cache, '--quiet']);
  await promisify(execFile)(hashCmd, hashArgs, { timeout: 60_000 });

  const mirror = fleet.mirror;
  const [serveCmd, serveFlags] = pkgtorrent([
    'serve',
    '--root',
    root,
    '--cache-dir',
    cache,
    '--files',
    '--host',
    mirror.ip,
    '--port',
    '80',
    '--trackers',
    trackers,
    '--tracker-whitelist',
    tracker.whitelistPath,
    '--tracker-pid-file',
    tracker.pidFile,
    ...serveArgs,
  ]);
  const serve = fleet.spawn(mirror, serveCmd, serveFlags, { name: 'serve' });
  if ((await serve.waitFor(/pkgtorrent: serving/, 30_000)) === null) throw new Error(`serve did not start in ${mirror.name}:\n${serve.output()}`);

  // The proxies run before the clock starts, as services on their machines.
  await Promise.all(
    fleet.clients.map(async (c) => {
      const [cmd, args] = pkgtorrent(['proxy', '--port', '3142', '--store', join(fleet.dir, `${c.name}-store`), '--bt-port', '7001']);
      const p = fleet.spawn(c, cmd, args, { name: 'proxy' });
      proxies.set(c.name, p);
      if ((await p.waitFor(/pkgtorrent: proxy on/, 30_000)) === null) throw new Error(`proxy did not start in ${c.name}:\n${p.output()}`);
    }),
  );

  const url = `http://${mirror.ip}/${PKG}`;
  const tx0 = await fleet.txBytes(mirror);
  const fetched = await Promise.all(
    fleet.clients.map(async (c) => {
      const file = join(fleet.dir, `${c.name}-${PKG_NAME}`);
      const r = await fleet.exec(c, 'curl', ['-sS', '--fail', '--max-time', String(FETCH_TIMEOUT_S), '-x', 'http://127.0.0.1:3142', '-o', file, url], {
        timeoutMs: (FETCH_TIMEOUT_S + 10) * 1000,
      });
      return { host: c, file, r };
    }),
  );
  await sleep(SETTLE_MS);
  const egress = ((await fleet.txBytes(mirror)) - tx0) / SIZE;
  // Read now, before this test asks serve for the torrent itself.
  const whitelisted = hexLines(readFileSync(tracker.whitelistPath, 'utf8'));

  let connected = 0;
  for (const [k, { host, file, r }] of fetched.entries()) {
    const c = `c${k + 1}`;
    t.equal(r.code, 0, `${c}: curl through the proxy completed`, { stderr: r.stderr });
    t.equal(existsSync(file) ? await sha256File(file) : 'no file', sha256, `${c}: its copy is identical to the source`);
    const proxy = proxies.get(host.name);
    // Written as the answer ends, which can be a moment after curl's last byte.
    const line = (await proxy?.waitFor(PKG_LINE, 5000)) ?? '';
    t.match(line, / 200 bittorrent bytes=/, `${c}: the proxy fetched it over BitTorrent`, { log: proxy?.output().slice(-3000) });
    const s = sources(line);
    const short = SIZE - (s.peers + s.mirror);
    t.ok(s.bytes === SIZE && short <= 0, `${c}: its log accounts for every byte by source (peers=${s.peers} mirror=${s.mirror}${s.seeder ? ` seeder=${s.seeder}` : ''}${short > 0 ? `: ${short} bytes short` : ''})`, { line });
    if (Number(/ connections=(\d+)/.exec(line)?.[1] ?? 0) > 0) connected++;
  }
  // No DHT, LPD nor PEX: a proxy meets peers only through the tracker.
  t.ok(connected > 0, `the tracker handed out peers (${connected} of ${CLIENTS} proxies connected to some)`);

  // The info hash, from the torrent as the service hands it out.
  const torrentPath = join(fleet.dir, `${PKG_NAME}.torrent`);
  const got = await fleet.exec(mirror, 'curl', ['-sS', '--fail', '--max-time', '30', '-o', torrentPath, `http://${mirror.ip}/fedora/torrent_service/simple/${PKG}`], { timeoutMs: 40_000 });
  const torrent = got.code === 0 ? parsePackageTorrent(readFileSync(torrentPath), PKG_NAME, SIZE) : null;
  t.ok(torrent, 'the service hands out the package torrent', { stderr: got.stderr });
  if (torrent) {
    t.notOk(whitelistAtStart.includes(torrent.infoHash), 'the info hash was not on the whitelist at the start');
    t.ok(whitelisted.includes(torrent.infoHash), `serve put the info hash ${torrent.infoHash} on the tracker's whitelist`, { whitelisted });
  }
  return egress;
}

t.test('with the origin seeder, the fleet shares the package: the mirror sends it about once', async (t) => {
  if (!needFleet(t) || !needBtEngine(t) || !need(t, 'opentracker') || !need(t, 'curl')) return;
  const egress = await fleetFetch(t, 'seed', ['--seed']);
  t.comment(`serve --seed: mirror egress ${egress.toFixed(2)} x file for ${CLIENTS} clients`);
  t.ok(egress <= 1.5, `mirror egress ${egress.toFixed(2)} x file <= 1.5`);
});

t.test('without the seeder, proxies cost the mirror no more than direct downloads', async (t) => {
  if (!needFleet(t) || !needBtEngine(t) || !need(t, 'opentracker') || !need(t, 'curl')) return;
  const egress = await fleetFetch(t, 'noseed', []);
  t.comment(`serve without --seed: mirror egress ${egress.toFixed(2)} x file for ${CLIENTS} clients (direct: about ${CLIENTS})`);
  t.ok(egress <= CLIENTS, `mirror egress ${egress.toFixed(2)} x file <= ${CLIENTS}`);
});
