// `pkgtorrent proxy` as users run it: the compiled binary. Bad flags are one
// line and exit 2; a proxy killed with SIGKILL mid-download takes its
// engine with it, and a restart on the same store serves nothing partial.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bin, BIN, nodeCommand } from './helpers/cli.js';
import { freePort, scratch } from './helpers/clients.js';
import { needBtEngine } from './helpers/oracles.js';
import { until } from './helpers/poll.js';
import { startMirror } from './helpers/mirror.js';
import { startGate, viaProxy } from './helpers/proxy.js';

t.test('bad usage: one line, exit 2', async (t) => {
  const open = await bin(['proxy', '--host', '0.0.0.0', '--store', scratch(t, 's')]);
  t.equal(open.code, 2);
  t.match(open.stderr, /^pkgtorrent: listening on 0\.0\.0\.0 needs --allow-from CIDR.*\n$/);
  const port = await bin(['proxy', '--port', 'x']);
  t.equal(port.code, 2);
  t.equal(port.stderr, "pkgtorrent: --port: expected a whole number, got 'x'\n", 'named by the flag typed, not the setting');
  const mirror = await bin(['proxy', '--mirror', 'nope']);
  t.equal(mirror.code, 2);
  t.match(mirror.stderr, /invalid mirror 'nope'/);
});

function startBinProxy(t: Test, store: string, btPort: number) {
  const child = spawn(...nodeCommand(BIN, ['proxy', '--port', '0', '--store', store, '--bt-port', String(btPort), '--min-size', '100K']), {
    env: { ...process.env, PKGTORRENT_CONFIG: '' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  t.teardown(() => void child.kill('SIGKILL'));
  return {
    child,
    err: () => err,
    url: async () => {
      if (!(await until(20_000, () => /proxy on (http:\S+?)\/ /.test(err)))) throw new Error(`proxy did not start: ${err}`);
      return /proxy on (http:\S+?)\/ /.exec(err)![1]!;
    },
  };
}

/** Processes whose command line mentions every one of `texts` (the engine of one proxy: its program and its port). */
function processesWith(...texts: string[]): number[] {
  const out: number[] = [];
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
      if (texts.every((text) => cmdline.includes(text))) out.push(Number(pid));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

t.test('SIGKILL mid-download: the engine stops too, and a restart serves nothing partial', async (t) => {
  if (!needBtEngine(t)) return;
  const data = randomBytes(2_000_000);
  const m = await startMirror(t, { pub: { 'big.rpm': data } });
  const gate = await startGate(t, m.url);
  gate.policy = { kind: 'slow', bytesPerSecond: 300_000 };
  const store = scratch(t, 'store');
  const btPort = await freePort();
  const first = startBinProxy(t, store, btPort);
  const url = await first.url();
  const answer = viaProxy(url, `${gate.url}/pub/big.rpm`).catch((e: Error) => e);
  t.ok(await until(20_000, () => gate.pieceBytes > 300_000), 'download under way');
  const engine = () => processesWith('pkgtorrent-bt', `0.0.0.0:${btPort}`);
  t.equal(engine().length, 1, "the proxy's engine runs");
  t.ok(readdirSync(join(store, 'partial')).length > 0, 'downloading into the store');
  first.child.kill('SIGKILL');
  const r = await answer;
  t.ok(r instanceof Error || !r.body.equals(data), 'the killed proxy did not finish that response');
  t.ok(await until(10_000, () => engine().length === 0), 'the engine exits with its proxy (its stdin closed)');
  t.same(readdirSync(join(store, 'done')), [], 'nothing in the store');

  gate.policy = { kind: 'pass' };
  const second = startBinProxy(t, store, await freePort());
  const url2 = await second.url();
  t.same(readdirSync(join(store, 'partial')), [], 'the partial download was discarded at start');
  const again = await viaProxy(url2, `${gate.url}/pub/big.rpm`);
  t.ok(again.body.equals(data), 'whole and correct');
  t.ok(await until(5000, () => /big\.rpm 200 bittorrent bytes=2000000/.test(second.err())), second.err());
  second.child.kill('SIGTERM');
});
