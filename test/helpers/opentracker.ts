// Debian's opentracker on 127.0.0.1 for peer-to-peer tests. Debian builds it
// in whitelist mode: an announce for an info hash missing from the whitelist
// is refused ("not authorized"). The whitelist is read from inside the
// directory it chroots into (-d), and it reloads the file on SIGHUP. Run as
// root it drops to the user `nobody` (its -u default), so the files it reads
// must be world-readable. Unprivileged it cannot chroot and stays in that
// directory instead, which works the same for us.
import { appendFileSync, chmodSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import type { Test } from 'tap';
import { freePort, scratch, startGroup } from './clients.js';
import { until } from './poll.js';
import { announceQuery } from './fleet.mjs';

export interface Tracker {
  port: number;
  /** HTTP announce URL. */
  http: string;
  /** UDP announce URL (BEP 15), same port. */
  udp: string;
  /** Whitelists info hashes (hex) and waits until the tracker accepts them. */
  allow(...infoHashes: string[]): Promise<void>;
  /** The whitelist file (what serve --tracker-whitelist appends to). */
  whitelist: string;
  /** A pid file of the tracker (for serve --tracker-pid-file). */
  pidFile: string;
  /** Whether an announce for this info hash is accepted now. */
  accepts(infoHash: string): Promise<boolean>;
}

/** One HTTP announce; resolves with the bencoded reply as text, or null on a connection error. */
function announce(port: number, infoHashHex: string, event: string): Promise<string | null> {
  const q = announceQuery(infoHashHex, event);
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: `/announce?${q}`, timeout: 2000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
    });
    req.on('error', () => resolve(null));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

// A hash nobody uses: the readiness probe expects it to be refused.
const PROBE_HASH = '00'.repeat(20);

/** Starts opentracker on 127.0.0.1 (TCP and UDP on one free port); it is stopped when `t` ends. */
export async function startOpentracker(t: Test, opts: { timeoutMs?: number } = {}): Promise<Tracker> {
  const dir = scratch(t, 'opentracker');
  chmodSync(dir, 0o755); // mkdtemp makes it 0700; `nobody` must read inside
  const whitelist = join(dir, 'whitelist');
  // Not empty: opentracker warns "Can't open accesslist file" for an empty
  // one (it refuses everything then, but the warning would mislead whoever
  // reads a failure's output). This placeholder is not the probe's hash.
  writeFileSync(whitelist, `${'ff'.repeat(20)}\n`, { mode: 0o644 });
  // Paths in the config are relative to the chroot (-d).
  writeFileSync(join(dir, 'opentracker.conf'), 'access.whitelist whitelist\n', { mode: 0o644 });

  let lastError = '';
  // The port is free when chosen but may be taken before opentracker binds
  // it (other tests run in parallel); try again with another one.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort(true);
    const proc = startGroup(t, 'opentracker', ['-i', '127.0.0.1', '-p', String(port), '-P', String(port), '-d', dir, '-f', join(dir, 'opentracker.conf')], {
      timeoutMs: opts.timeoutMs ?? 120_000,
    });
    let exited = false;
    void proc.exited.then(() => (exited = true));
    // Ready when it answers an announce, refusing the probe hash (which also
    // shows the whitelist is in force).
    const ready = await until(5000, async () => !exited && ((await announce(port, PROBE_HASH, 'started')) ?? '').includes('failure reason'));
    if (!ready) {
      lastError = proc.output();
      await proc.stop();
      continue;
    }
    // event=stopped skips the whitelist check, so the probe must be a real
    // announce; a second one with event=stopped then removes the fake peer
    // (port 1) from the swarm again.
    const accepted = async (h: string) => {
      if (((await announce(port, h, 'started')) ?? 'failure reason').includes('failure reason')) return false;
      await announce(port, h, 'stopped');
      return true;
    };
    const pidFile = join(dir, 'opentracker.pid');
    writeFileSync(pidFile, `${proc.commandPid() ?? ''}\n`);
    return {
      port,
      whitelist,
      pidFile,
      accepts: accepted,
      http: `http://127.0.0.1:${port}/announce`,
      udp: `udp://127.0.0.1:${port}/announce`,
      allow: async (...hashes: string[]) => {
        appendFileSync(whitelist, hashes.map((h) => `${h.toLowerCase()}\n`).join(''));
        const pid = proc.commandPid();
        if (pid === undefined) throw new Error('opentracker is not running');
        process.kill(pid, 'SIGHUP'); // reloads the whitelist
        const ok = await until(5000, async () => (await Promise.all(hashes.map(accepted))).every(Boolean));
        if (!ok) throw new Error(`opentracker did not accept ${hashes.join(', ')} after SIGHUP\n${proc.output()}`);
      },
    };
  }
  throw new Error(`opentracker did not start on 127.0.0.1\n${lastError}`);
}
