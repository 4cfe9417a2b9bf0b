// README's quick start, run as written (ports and the demo directory
// swapped for free ones, `pkgtorrent` for this checkout's binary): the demo
// mirror answers a torrent, and the client side's package goes through
// BitTorrent, then the store. A README that drifts from the program fails.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN } from './helpers/cli.js';
import { freePort, scratch, startGroup } from './helpers/clients.js';
import { need, needBtEngine } from './helpers/oracles.js';
import { until } from './helpers/poll.js';

const README = readFileSync(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8');

/** The shell lines of the ```sh blocks between two headings. */
function shellLines(from: string, to: string): string[] {
  const section = README.slice(README.indexOf(from), README.indexOf(to, README.indexOf(from)));
  const lines: string[] = [];
  for (const m of section.matchAll(/```sh\n([^]*?)```/g)) {
    for (const line of m[1]!.split('\n')) if (line.trim() && !line.trim().startsWith('#')) lines.push(line.trim());
  }
  return lines;
}

t.test("README's quick start: a torrent from the demo mirror, and a package through the proxy over BitTorrent", async (t) => {
  if (!needBtEngine(t) || !need(t, 'curl')) return;
  const lines = shellLines('## Quick start', 'Package managers need only');
  t.ok(lines.some((l) => l.startsWith('pkgtorrent serve')) && lines.some((l) => l.startsWith('pkgtorrent proxy')), lines.join('\n'));
  const demo = scratch(t, 'readme-demo');
  const [servePort, proxyPort, btPort] = [await freePort(), await freePort(), await freePort()];
  const here = (line: string) =>
    line
      .replaceAll('/tmp/pkgtorrent-demo', demo)
      .replaceAll('8080', String(servePort))
      .replaceAll('3142', String(proxyPort))
      .replaceAll('-o pub.torrent', `-o ${join(demo, 'pub.torrent')}`)
      .replaceAll('-o /tmp/demo.rpm', `-o ${join(demo, 'demo.rpm')}`);
  const env = { ...process.env, PKGTORRENT_CONFIG: '' };
  const cwd = fileURLToPath(new URL('..', import.meta.url));
  const running: Array<ReturnType<typeof startGroup>> = [];
  for (const raw of lines) {
    const line = here(raw);
    if (/^pkgtorrent (serve|proxy)\b/.test(line)) {
      // The long-running ones, in the background; the proxy's BitTorrent port kept free of other tests'.
      const args = line.split(/\s+/).slice(1).concat(line.startsWith('pkgtorrent proxy') ? ['--port', String(proxyPort), '--bt-port', String(btPort)] : []);
      const p = startGroup(t, '/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, BIN, ...args], { timeoutMs: 120_000, env });
      running.push(p);
      t.ok(await until(15_000, () => /pkgtorrent: (serving|proxy on) /.test(p.output())), p.output());
      continue;
    }
    const cmd = line.replace(/^pkgtorrent /, `${process.execPath} ${BIN} `);
    execFileSync('bash', ['-euo', 'pipefail', '-c', cmd], { cwd, env, timeout: 60_000 });
  }
  t.ok(readFileSync(join(demo, 'pub.torrent')).subarray(0, 1).toString() === 'd', 'the demo torrent is a bencoded dictionary');
  t.ok(readFileSync(join(demo, 'demo.rpm')).equals(readFileSync(join(demo, 'mirror/pub/demo-1.0-1.noarch.rpm'))), 'the package arrived whole');
  const proxy = running[1]!;
  t.ok(await until(5000, () => /demo-1\.0-1\.noarch\.rpm 200 bittorrent bytes=8388608 /.test(proxy.output())), proxy.output());
  // The README says a repeat is answered from the store.
  execFileSync('curl', ['-s', '-x', `http://127.0.0.1:${proxyPort}`, '-o', join(demo, 'again.rpm'), `http://127.0.0.1:${servePort}/pub/demo-1.0-1.noarch.rpm`]);
  t.ok(await until(5000, () => /demo-1\.0-1\.noarch\.rpm 200 store bytes=8388608 /.test(proxy.output())), proxy.output());
  for (const p of running) await p.stop();
});
