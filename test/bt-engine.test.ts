// The BitTorrent engine is a real libtorrent (python3-libtorrent) driven by
// bin/pkgtorrent-bt: the settings we ask for took effect in libtorrent
// itself, it comes back after a kill, and a missing engine is one clear
// error, from the engine and from the proxy that needs it.
import t from 'tap';
import { spawn } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BtEngine, engineArgs } from '../src/core/bt-engine.js';
import { PkgError } from '../src/core/errors.js';
import { startProxy } from '../src/proxy/server.js';
import { freePort, scratch } from './helpers/clients.js';
import { need } from './helpers/oracles.js';
import { until } from './helpers/poll.js';

const CHECKED = [
  'listen_interfaces',
  'enable_dht',
  'enable_lsd',
  'enable_upnp',
  'enable_natpmp',
  'enable_incoming_utp',
  'enable_outgoing_utp',
  'upload_rate_limit',
  'connections_limit',
  'unchoke_slots_limit',
  'alert_queue_size',
  'max_retry_port_bind',
  'allowed_fast_set_size',
  'unchoke_interval',
  'seeding_outgoing_connections',
  'peer_fingerprint',
];

t.test("the proxy's engine: discovery off, the limits given", async (t) => {
  if (!need(t, 'libtorrent')) return;
  const port = await freePort();
  const e = await BtEngine.start({ listen: `127.0.0.1:${port}`, retryPorts: 5, uploadLimit: 123_456, connections: 77 });
  t.teardown(() => e.close());
  const s = await e.settings(CHECKED);
  t.match(s, {
    listen_interfaces: `127.0.0.1:${port}`,
    enable_dht: false,
    enable_lsd: false,
    enable_upnp: false,
    enable_natpmp: false,
    enable_incoming_utp: false,
    enable_outgoing_utp: false,
    upload_rate_limit: 123_456,
    connections_limit: 77,
    max_retry_port_bind: 5,
    alert_queue_size: 200_000,
    peer_fingerprint: '-PT0100-',
  });
  t.equal(s.seeding_outgoing_connections, true, 'a proxy seeds to whoever asks, and asks others');
  t.equal((await e.session()).listen_port, port, 'listening where asked');
});

t.test('the origin: few slots, quick unchokes, no allowed-fast pieces, no dialling out', async (t) => {
  if (!need(t, 'libtorrent')) return;
  const e = await BtEngine.start({ listen: `127.0.0.1:${await freePort()}`, origin: true, unchokeSlots: 2 });
  t.teardown(() => e.close());
  t.match(await e.settings(CHECKED), {
    unchoke_slots_limit: 2,
    allowed_fast_set_size: 0,
    unchoke_interval: 2,
    seeding_outgoing_connections: false,
    peer_fingerprint: '-PO0100-',
  });
  t.same(engineArgs({ listen: 'x:1', dht: true, lpd: true, pex: true }).filter((a) => /^--(dht|lpd|pex)$/.test(a)), ['--dht', '--lpd', '--pex'], 'discovery is a setting');
});

t.test('killed, the engine comes back and says so; calls to the dead one fail, not hang', async (t) => {
  if (!need(t, 'libtorrent')) return;
  const logs: string[] = [];
  const e = await BtEngine.start({ listen: `127.0.0.1:${await freePort()}`, log: (l) => logs.push(l) });
  t.teardown(() => e.close());
  const gen = e.generation;
  process.kill(e.pid!, 'SIGKILL');
  await t.rejects(e.session(), PkgError);
  t.ok(await until(10_000, () => e.generation === gen + 1 && e.pid !== undefined), 'restarted');
  t.ok(await until(10_000, () => e.session().then(() => true, () => false)), 'answers again');
  t.match(logs.join('\n'), /BitTorrent engine exited \(SIGKILL\); starting it again/);
});

t.test('no engine, or no libtorrent: one clear error naming the package', async (t) => {
  await t.rejects(BtEngine.start({ listen: '127.0.0.1:1', program: '/nonexistent/pkgtorrent-bt' }), {
    name: 'PkgError',
    message: /cannot start the BitTorrent engine .*python3-libtorrent/,
  });
  const dir = scratch(t, 'no-lt');
  const fake = join(dir, 'pkgtorrent-bt');
  // What the engine does on a machine without python3-libtorrent.
  writeFileSync(fake, '#!/usr/bin/python3\nimport libtorrent_is_not_installed\n');
  chmodSync(fake, 0o755);
  await t.rejects(BtEngine.start({ listen: '127.0.0.1:1', program: fake }), { name: 'PkgError', message: /exited at start.*install python3-libtorrent/ });
  // The proxy without a working engine: one line, nothing left listening.
  const store = scratch(t, 'no-lt-store');
  await t.rejects(
    startProxy({
      host: '127.0.0.1', port: 0, mirrors: [], patterns: [], minSize: 0, stallMs: 5000, lookupTimeoutMs: 3000, noServiceTtlMs: 1000,
      serviceName: 'torrent_service', store, storeSize: 1024 ** 2, seedTimeMs: 1000, seedRatio: 0, seedMaxTorrents: 1, uploadLimit: 0,
      btPort: '6881', dht: false, lpd: false, pex: false, allowFrom: [], allowHosts: [],
      spawn: (_cmd, args, opts) => spawn(fake, args, opts),
      log: () => undefined, accessLog: () => undefined,
    }),
    { name: 'PkgError', message: /install python3-libtorrent/ },
  );
});
