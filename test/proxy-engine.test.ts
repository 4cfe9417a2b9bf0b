// The engine is a real aria2c: its options took effect, it downloads a
// service torrent through the web seed alone, and it comes back after a kill.
import t from 'tap';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Aria2Engine, aria2Args, verifiedPrefixPieces, type Spawn } from '../src/core/aria2.js';
import { PkgError } from '../src/core/errors.js';
import { need } from './helpers/oracles.js';
import { until } from './helpers/poll.js';
import { startMirror } from './helpers/mirror.js';
import { request } from './helpers/server.js';

t.test('verified prefix: leading set bits of the hex bitfield', async (t) => {
  t.equal(verifiedPrefixPieces(''), 0);
  t.equal(verifiedPrefixPieces('00'), 0);
  t.equal(verifiedPrefixPieces('80'), 1);
  t.equal(verifiedPrefixPieces('e0'), 3);
  t.equal(verifiedPrefixPieces('ff'), 8);
  t.equal(verifiedPrefixPieces('ffb0'), 9, 'a gap ends the prefix even with later pieces present');
  t.equal(verifiedPrefixPieces('7f'), 0);
});

t.test('options took effect in the running aria2c; peer discovery off', async (t) => {
  if (!need(t, 'aria2c')) return;
  const dir = t.testdir();
  const spawned: string[][] = [];
  const recording: Spawn = (cmd, args, opts) => {
    spawned.push([cmd, ...args]);
    return spawn(cmd, args, opts);
  };
  const e = await Aria2Engine.start({ dir, spawn: recording, seedTimeMinutes: 7, seedRatio: 1.5, uploadLimit: 1024 * 1024, maxDownloads: 9 });
  t.teardown(() => e.close());
  t.equal(spawned.length, 1, 'spawned through the injected environment');
  const secret = spawned[0]!.find((a) => a.startsWith('--rpc-secret='))!.slice(13);
  t.match(secret, /^[0-9a-f]{36}$/, 'random secret');
  const g = await e.getGlobalOption();
  t.equal(g['enable-dht'], 'false');
  t.equal(g['enable-dht6'], 'false');
  t.equal(g['bt-enable-lpd'], 'false');
  t.equal(g['enable-peer-exchange'], 'false');
  t.equal(g['rpc-listen-all'], 'false', 'RPC on loopback only');
  t.equal(g['seed-time'], '7');
  t.equal(g['seed-ratio'], '1.5');
  t.equal(g['max-overall-upload-limit'], '1048576');
  t.equal(g['max-concurrent-downloads'], '9');
  t.equal(g['bt-detach-seed-only'], 'true');
  t.equal(g['max-connection-per-server'], '2', 'two connections to the web seed');
  t.equal(g.split, '2');
  t.equal(g['rpc-save-upload-metadata'], 'false');
  t.equal(g.dir, dir);
  // The secret is required: a call without it is refused.
  const port = /--rpc-listen-port=(\d+)/.exec(spawned[0]!.join(' '))![1]!;
  const res = await request(`http://127.0.0.1:${port}`, '/jsonrpc', {
    method: 'POST',
    body: JSON.stringify({ jsonrpc: '2.0', id: '1', method: 'aria2.getGlobalOption', params: [] }),
  });
  t.match(res.body.toString(), /Unauthorized/, 'no secret, no access');
});

t.test('enabling DHT/LPD/PEX is a setting', async (t) => {
  const args = aria2Args({ dir: '/x', dht: true, lpd: true, pex: true }, 1, 's', 1);
  t.ok(args.includes('--enable-dht=true') && args.includes('--bt-enable-lpd=true') && args.includes('--enable-peer-exchange=true'));
});

t.test('downloads a service torrent from the web seed alone; restarts after a kill', async (t) => {
  if (!need(t, 'aria2c')) return;
  const data = randomBytes(300_000);
  const m = await startMirror(t, { pub: { 'a.rpm': data } });
  const dir = t.testdir();
  const logs: string[] = [];
  const e = await Aria2Engine.start({ dir, log: (l) => logs.push(l) });
  t.teardown(() => e.close());
  const tr = await request(m.url, '/pub/torrent_service/simple/pub/a.rpm');
  t.equal(tr.status, 200, tr.body.toString().slice(0, 200));
  const torrent = tr.body;
  const gid = await e.addTorrent(torrent, [], {});
  let s = await e.tellStatus(gid);
  t.ok(await until(20_000, async () => (s = await e.tellStatus(gid)).completedLength === data.length), 'completed');
  t.equal(s.numPieces, Math.ceil(data.length / 16384));
  t.equal(verifiedPrefixPieces(s.bitfield), s.numPieces, 'every piece verified');
  t.equal(s.files.length, 1);
  t.ok(readFileSync(join(dir, 'a.rpm')).equals(data), 'bytes identical to the mirror');
  await m.serve.waitFor(/GET \/pub\/a\.rpm 20[06]/); // fetched from the web seed

  const gen = e.generation;
  process.kill(e.pid!, 'SIGKILL');
  await t.rejects(e.tellStatus(gid), PkgError, 'a call to the dead engine fails rather than hangs');
  t.ok(await until(10_000, () => e.generation === gen + 1 && e.pid !== undefined), 'restarted');
  t.ok(await until(10_000, () => e.call('aria2.getVersion').then(() => true, () => false)), 'answers again');
  t.match(logs.join('\n'), /aria2c exited \(SIGKILL\); starting it again/);
});

t.test('a missing aria2c binary is one clear error', async (t) => {
  await t.rejects(Aria2Engine.start({ dir: t.testdir(), aria2c: '/nonexistent/aria2c' }), { name: 'PkgError', message: /cannot start aria2c/ });
});
