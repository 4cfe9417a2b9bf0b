// Stopping the proxy must not break a running `apt upgrade`: on SIGTERM the
// real binary stops accepting, lets the answer in flight finish (here a
// download trickling from a slow mirror, fetched by a real curl), logs it
// whole, and exits 143. An answer that outlives the grace period is cut and
// logged with '!' after its status.
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { BIN, nodeCommand } from './helpers/cli.js';
import { freePort, scratch, startGroup } from './helpers/clients.js';
import { startTestProxy, viaProxy } from './helpers/proxy.js';
import { until } from './helpers/poll.js';
import { need, needBtEngine } from './helpers/oracles.js';
import { spawn } from 'node:child_process';

/** A mirror that sends `data` (not a package: the proxy relays it) at about `bytesPerSecond`. */
async function slowMirror(t: Test, data: Buffer, bytesPerSecond: number): Promise<string> {
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-length': data.length, 'content-type': 'application/octet-stream' });
    let at = 0;
    const step = Math.ceil(bytesPerSecond / 10);
    const timer = setInterval(() => {
      if (res.destroyed) return clearInterval(timer);
      res.write(data.subarray(at, at + step));
      at += step;
      if (at >= data.length) {
        clearInterval(timer);
        res.end();
      }
    }, 100);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

t.test('SIGTERM with a download in flight: curl gets every byte, the line is whole, exit 143', async (t) => {
  if (!needBtEngine(t) || !need(t, 'curl')) return;
  const data = randomBytes(600_000);
  const mirror = await slowMirror(t, data, 300_000);
  const port = await freePort();
  const [cmd, args] = nodeCommand(BIN, ['proxy', '--port', String(port), '--store', scratch(t, 'stop-store'), '--bt-port', String(await freePort())]);
  const proxy = startGroup(t, cmd, args, { timeoutMs: 60_000, env: { ...process.env, PKGTORRENT_CONFIG: '' } });
  t.ok(await until(15_000, () => /proxy on/.test(proxy.output())), proxy.output());

  const out = scratch(t, 'stop-out');
  const curl = spawn('curl', ['-sS', '-o', `${out}/x.iso`, '-w', '%{size_download}', '-x', `http://127.0.0.1:${port}`, `${mirror}/pub/x.iso`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let curlOut = '';
  curl.stdout.on('data', (c: Buffer) => (curlOut += c.toString()));
  const curlDone = new Promise<number | null>((r) => curl.once('exit', (code) => r(code)));
  // Stopped half way through the two-second download.
  await new Promise((r) => setTimeout(r, 800));
  process.kill(proxy.commandPid()!, 'SIGTERM');
  const exit = await proxy.exited;
  t.equal(await curlDone, 0, 'curl completed');
  t.equal(Number(curlOut), data.length, 'every byte arrived');
  t.equal(exit.code, 143, 'exit status 143 after SIGTERM');
  t.match(proxy.output(), new RegExp(`GET ${mirror}/pub/x\\.iso 200 direct bytes=${data.length} `), 'logged whole, no !');
  // Stopped: nothing listens any more.
  const again = await viaProxy(`http://127.0.0.1:${port}`, `${mirror}/pub/x.iso`).then(
    () => 'answered',
    (e: NodeJS.ErrnoException) => e.code,
  );
  t.equal(again, 'ECONNREFUSED', 'new connections are refused');
});

t.test('an answer that outlives the grace period is cut and logged with !', async (t) => {
  if (!needBtEngine(t)) return;
  const data = randomBytes(2_000_000);
  const mirror = await slowMirror(t, data, 200_000);
  const p = await startTestProxy(t, { stopGraceMs: 300 });
  const got = viaProxy(p.url, `${mirror}/pub/slow.iso`).then(
    (r) => r.body.length,
    () => -1,
  );
  await new Promise((r) => setTimeout(r, 500));
  const started = Date.now();
  await p.close();
  t.ok(Date.now() - started < 10_000, 'the stop waited about the grace period, not for the download');
  t.ok((await got) < data.length, 'the client did not get the whole file');
  t.match(await p.line(/slow\.iso/), / 200! direct /, "the cut answer's status carries !");
});
