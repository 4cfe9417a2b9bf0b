// A normal user can run the proxy: the real binary, as the user `nobody`
// (setpriv), falls back from the default store (root's /var/cache) to the
// user's cache and says so once; a store the user cannot write, chosen
// explicitly, is one line naming it and the setting, exit 1.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chownSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { BIN } from './helpers/cli.js';
import { freePort, scratch, startGroup } from './helpers/clients.js';
import { needBtEngine } from './helpers/oracles.js';
import { until } from './helpers/poll.js';

const NOBODY = 65534;

/** The command line of the binary as `nobody`, with its own HOME. */
function asNobody(home: string, argv: string[]): [string, string[]] {
  return [
    'setpriv',
    ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups', '/usr/bin/env', '-u', 'NODE_OPTIONS', `HOME=${home}`, 'XDG_CACHE_HOME=', 'PKGTORRENT_CONFIG=', process.execPath, BIN, ...argv],
  ];
}

/** Whether `nobody` can run the checkout at all (a clone under a private home cannot be). */
function nobodyCanRun(): boolean {
  const r = spawnSync('setpriv', ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups', process.execPath, '-e', `require('fs').accessSync(${JSON.stringify(BIN)})`]);
  return r.status === 0;
}

t.test('as a normal user: the default store falls back to ~/.cache, an unwritable --store is one line', async (t) => {
  if (!needBtEngine(t)) return;
  if (process.getuid?.() !== 0) {
    const msg = 'needs root to become nobody with setpriv';
    process.stderr.write(`# SKIP ${msg}\n`);
    t.pass(msg, { skip: msg });
    return;
  }
  if (!nobodyCanRun()) {
    // Loud, but not a failure even in CI: where the clone lies (a private
    // home) is the machine's business, not the code's.
    process.stderr.write(`# SKIP the user nobody cannot read ${BIN}\n`);
    t.pass('nobody cannot read the checkout', { skip: 'nobody cannot read the checkout' });
    return;
  }
  const home = scratch(t, 'nobody-home');
  chownSync(home, NOBODY, NOBODY);
  // Root's default store is not nobody's to write: if it exists it is
  // root's, and if not, nobody cannot create it in /var/cache.
  const [cmd, args] = asNobody(home, ['proxy', '--port', '0', '--bt-port', String(await freePort())]);
  const proxy = startGroup(t, cmd, args, { timeoutMs: 30_000 });
  t.ok(await until(15_000, () => /proxy on /.test(proxy.output())), proxy.output());
  const fallback = join(home, '.cache/pkgtorrent-proxy');
  t.match(proxy.output(), `pkgtorrent: store /var/cache/pkgtorrent-proxy is not writable (permission denied); using ${fallback}\n`, 'said once');
  t.match(proxy.output(), `(store ${fallback})`, 'and used');
  t.equal(proxy.output().match(/is not writable/g)?.length, 1, 'only once');
  await proxy.stop();

  const rootOnly = scratch(t, 'root-store');
  mkdirSync(join(rootOnly, 'done'));
  const [cmd2, args2] = asNobody(home, ['proxy', '--port', '0', '--store', rootOnly]);
  const r = spawnSync(cmd2, args2, { encoding: 'utf8', timeout: 20_000 });
  t.equal(r.status, 1, 'exit 1');
  t.equal(r.stderr, `pkgtorrent: store ${rootOnly}: cannot be created or written (permission denied); choose another with --store\n`, 'one line naming the dir and the setting');
});
