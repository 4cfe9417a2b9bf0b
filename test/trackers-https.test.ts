// `trackers check` over HTTPS against a real TLS endpoint: Debian's
// opentracker behind stunnel, with a certificate openssl makes for the test.
// Node verifies it against its CA store plus NODE_EXTRA_CA_CERTS, the way an
// operator trusts a tracker behind a private CA (see pkgtorrent(1)).
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bin } from './helpers/cli.js';
import { need } from './helpers/oracles.js';
import { startOpentracker } from './helpers/opentracker.js';
import { freePort, scratch, startGroup } from './helpers/clients.js';
import { until } from './helpers/poll.js';

/** A self-signed certificate for 127.0.0.1 (its own CA), made by openssl. */
function makeCert(dir: string): { cert: string; key: string } {
  const cert = join(dir, 'tracker.pem');
  const key = join(dir, 'tracker.key');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** stunnel terminating TLS on a free port and forwarding to `target`; stopped with `t`. */
async function tlsFront(t: Test, dir: string, target: number, cert: { cert: string; key: string }): Promise<number> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const conf = join(dir, `stunnel-${attempt}.conf`);
    writeFileSync(
      conf,
      ['foreground = yes', 'pid =', 'debug = 3', '[tracker]', `accept = 127.0.0.1:${port}`, `connect = 127.0.0.1:${target}`, `cert = ${cert.cert}`, `key = ${cert.key}`, ''].join('\n'),
    );
    const proc = startGroup(t, 'stunnel4', [conf], { timeoutMs: 120_000 });
    let exited = false;
    void proc.exited.then(() => (exited = true));
    // Until it accepts connections, or gives up (the port was taken meanwhile).
    const up = await until(5000, async () => exited || (await accepts(port)), 100);
    if (up && !exited) return port;
    await proc.stop();
  }
  throw new Error('stunnel did not start');
}

t.test('an https tracker is probed through TLS, and its certificate is checked', async (t) => {
  if (!need(t, 'opentracker') || !need(t, 'stunnel4') || !need(t, 'openssl')) return;
  const dir = scratch(t, 'https-tracker');
  const cert = makeCert(dir);
  const ot = (await startOpentracker(t)).port;
  const port = await tlsFront(t, dir, ot, cert);
  const trackers = join(dir, 'trackers');
  writeFileSync(trackers, `https://127.0.0.1:${port}/announce\n`);
  const check = (env: Record<string, string | undefined>) => bin(['trackers', 'check', '--trackers', trackers, '--timeout', '5s', '--json'], { env });

  const trusted = await check({ NODE_EXTRA_CA_CERTS: cert.cert });
  t.equal(trusted.code, 0, trusted.stderr);
  const ok = JSON.parse(trusted.stdout);
  t.match(ok.lines[0], { status: 'ok', answered: true, detail: /^HTTP 200, interval \d+s$/ }, 'opentracker answered through TLS');

  // Unknown CA: no answer is accepted, and the reason says why.
  const untrusted = await check({ NODE_EXTRA_CA_CERTS: undefined });
  t.equal(untrusted.code, 1, 'no tracker answered');
  const bad = JSON.parse(untrusted.stdout);
  t.match(bad.lines[0], { status: 'error', answered: false, detail: /self[- ]signed certificate/ });
});
