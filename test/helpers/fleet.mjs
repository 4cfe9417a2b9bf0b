// A LAN on this one machine, built from Linux network namespaces: a mirror
// host and N client hosts, each with its own `eth0`, all on one bridge, so
// that traffic between them crosses real (virtual) links that can be counted
// and shaped. Benchmarks use it to see what leaves a mirror when a fleet
// fetches the same package; loopback cannot show that, as every process
// would share one interface and one address.
//
// Rules it keeps, on purpose:
//   - The host's own (initial) namespace is never touched: the bridge lives
//     in a "switch" namespace, and each veth pair is created inside it with
//     its far end moved straight into the host namespace it serves. Nothing
//     here is reachable from, or routes to, the machine's real network.
//   - Everything it creates is removed again: by destroy() on the normal
//     path, on SIGINT, SIGTERM and SIGHUP (then the signal takes its course),
//     and, synchronously (all that can run then), on process exit and
//     uncaught errors. A run killed with SIGKILL cannot clean up: its
//     processes still die through the `timeout` wrapper every command runs
//     under, and createFleet names the namespaces it left if the same names
//     come round again.
//   - Processes run in their own process group (detached), so stopping one
//     reaches whatever it forked (the proxy's aria2c, a shell's children).
//
// Needs root and iproute2 (`ip`, `tc`). canCreateFleet() says whether this
// machine can, so callers can skip loudly instead of failing.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, chmodSync, closeSync, createReadStream, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * @typedef {object} Host
 * @property {string} name network namespace name (for `ip netns exec`)
 * @property {string} ip IPv4 address of its eth0
 * @property {'mirror' | 'client'} role
 * @property {number} index 0 for the mirror, 1..n for the clients
 */

/**
 * @typedef {object} Exit
 * @property {number | null} code
 * @property {NodeJS.Signals | null} signal
 * @property {boolean} timedOut true when the spawn's own timeout ended it
 */

/**
 * @typedef {object} Handle
 * @property {import('node:child_process').ChildProcess} proc the `ip netns exec` process (it execs into `timeout`, then the command)
 * @property {string} logPath stdout and stderr, interleaved
 * @property {Promise<Exit>} exited
 * @property {() => string} output everything the command wrote so far
 * @property {() => Promise<Exit>} stop SIGTERM to the whole group, SIGKILL after 5 s
 * @property {() => number | undefined} commandPid pid of the command itself, for signals meant for it alone (SIGHUP)
 * @property {(pattern: RegExp, timeoutMs: number) => Promise<string | null>} waitFor first output line matching, or null on timeout or exit
 */

/**
 * @typedef {object} SpawnOptions
 * @property {string} [name] short label for the log file name
 * @property {NodeJS.ProcessEnv} [env] replaces the (cleaned) environment
 * @property {string} [cwd]
 * @property {number} [timeoutMs] hard limit; default: the fleet's lifetime
 */

/**
 * @typedef {object} ExecResult
 * @property {number | null} code null when killed (timeout)
 * @property {string} stdout
 * @property {string} stderr
 */

// Fleets alive in this process, for the exit and signal hooks.
/** @type {Set<{ destroy(): Promise<void>, destroySync(): void }>} */
const liveFleets = new Set();
let hooked = false;
let created = 0;

// Proxy settings from the environment would send a client's curl (or the
// pkgtorrent proxy's upstream requests) to a proxy that does not exist in
// the namespace: commands get an environment without them.
const PROXY_VARS = ['http_proxy', 'https_proxy', 'all_proxy', 'no_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'NO_PROXY'];
function cleanEnv() {
  const env = { ...process.env };
  for (const v of PROXY_VARS) delete env[v];
  return env;
}

/**
 * Runs `cmd args` synchronously and throws with its stderr if it fails.
 * @param {string} cmd
 * @param {string[]} args
 */
function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

/**
 * Kills a process group; ESRCH (already gone) is fine.
 * @param {number} pid
 * @param {NodeJS.Signals} signal
 */
function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    // the group is gone
  }
}

/**
 * Pids of the processes inside namespace `ns`, found by their namespace,
 * whatever their parent or group.
 * @param {string} ns
 * @returns {number[]}
 */
function nsPids(ns) {
  const r = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
  return (r.stdout ?? '').split(/\s+/).filter(Boolean).map(Number);
}

/**
 * Every process still inside namespace `ns` gets SIGKILL, whatever its
 * group (a daemon that left it, a forked helper).
 * @param {string} ns
 */
function killInside(ns) {
  for (const pid of nsPids(ns)) {
    if (pid === process.pid) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

/** Namespaces that exist now. */
function namespaces() {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  // Lines look like "name" or "name (id: 3)".
  return new Set((r.stdout ?? '').split('\n').map((l) => l.split(' ')[0] ?? '').filter(Boolean));
}

function hookProcess() {
  if (hooked) return;
  hooked = true;
  const cleanupAllSync = () => {
    for (const f of [...liveFleets]) f.destroySync();
  };
  process.on('exit', cleanupAllSync);
  // An uncaught error does not emit 'exit'; the monitor runs first and does
  // not change how Node reports the error.
  process.on('uncaughtExceptionMonitor', cleanupAllSync);
  let stopping = false;
  for (const sig of /** @type {NodeJS.Signals[]} */ (['SIGINT', 'SIGTERM', 'SIGHUP'])) {
    const onSignal = () => {
      const reraise = () => {
        cleanupAllSync();
        // Let the signal do what it would have done without us: with no
        // other listener, end the process (exit status 128+n).
        process.removeListener(sig, onSignal);
        if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
      };
      if (stopping) return reraise(); // a second Ctrl-C: no more waiting
      stopping = true;
      process.stderr.write(`\nfleet: ${sig}: stopping processes and removing the network namespaces\n`);
      // The event loop still runs here, so stop gently (SIGTERM, then
      // SIGKILL): processes that die while we can still reap them leave no
      // zombies behind, which matters where PID 1 does not reap orphans.
      const gentle = Promise.all([...liveFleets].map((f) => f.destroy()));
      void Promise.race([gentle, sleep(10_000)]).finally(reraise);
    };
    process.on(sig, onSignal);
  }
}

/**
 * Whether this machine can build a fleet: root, iproute2, and namespaces
 * with a bridge and a veth pair. Creates and deletes one probe namespace.
 * @returns {{ ok: boolean, why: string }}
 */
export function canCreateFleet() {
  if (process.platform !== 'linux') return { ok: false, why: `network namespaces are Linux only (this is ${process.platform})` };
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return { ok: false, why: 'not root: creating network namespaces needs root' };
  for (const tool of ['ip', 'tc']) {
    const r = spawnSync(tool, ['-V'], { encoding: 'utf8' });
    if (r.error) return { ok: false, why: `${tool} (iproute2) is missing: ${r.error.message}` };
  }
  const probe = `pkgt${process.pid % 100000}-probe`;
  try {
    run('ip', ['netns', 'add', probe]);
  } catch (err) {
    return { ok: false, why: `ip netns add failed: ${/** @type {Error} */ (err).message}` };
  }
  try {
    run('ip', ['-n', probe, 'link', 'add', 'br0', 'type', 'bridge']);
    run('ip', ['-n', probe, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb']);
    return { ok: true, why: '' };
  } catch (err) {
    return { ok: false, why: `no bridge or veth inside a namespace: ${/** @type {Error} */ (err).message}` };
  } finally {
    spawnSync('ip', ['netns', 'del', probe]);
  }
}

/**
 * Builds the LAN. Throws (after removing whatever it created) when a step
 * fails or a client cannot reach the mirror.
 * @param {{ clients: number, uplinkMbit: number, tag?: string, dir?: string, lifetimeS?: number }} o
 *   uplinkMbit: rate of the mirror's eth0 egress (tbf); 0 for none.
 *   dir: where logs go (the caller keeps it); default: a scratch dir removed by destroy().
 *   lifetimeS: hard limit on every spawned command (default 3 h), in case this process is SIGKILLed.
 */
export async function createFleet(o) {
  const n = o.clients;
  if (!Number.isInteger(n) || n < 1 || n > 200) throw new Error(`createFleet: clients must be 1..200, not ${n}`);
  // Names and addresses come from the pid, so two runs at once do not meet;
  // a counter keeps two fleets of one process apart too. The addresses only
  // need to differ per bridge, but telling runs apart in `ip netns list`
  // and in a packet capture is easier when they differ everywhere.
  const seq = created++;
  const tag = (o.tag ?? '').replace(/[^A-Za-z0-9]/g, '').slice(0, 12);
  const prefix = `pkgt${process.pid % 100000}${tag ? `-${tag}` : ''}${seq ? `-${seq}` : ''}`;
  const net = `10.${201 + (seq % 50)}.${process.pid % 250}`;
  const lifetimeS = o.lifetimeS ?? 3 * 3600;
  const ownDir = o.dir === undefined;
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'pkgtorrent-fleet-'));
  mkdirSync(join(dir, 'logs'), { recursive: true });

  const sw = `${prefix}-sw`;
  /** @type {Host} */
  const mirror = { name: `${prefix}-mirror`, ip: `${net}.1`, role: 'mirror', index: 0 };
  /** @type {Host[]} */
  const clients = Array.from({ length: n }, (_, i) => ({ name: `${prefix}-c${i + 1}`, ip: `${net}.${11 + i}`, role: 'client', index: i + 1 }));
  const hosts = [mirror, ...clients];

  const existing = namespaces();
  const stale = [sw, ...hosts.map((h) => h.name)].filter((ns) => existing.has(ns));
  if (stale.length) {
    throw new Error(`createFleet: namespaces from an earlier run with the same pid are still there (killed with SIGKILL?): ${stale.join(' ')}\n  remove them with: for ns in ${stale.join(' ')}; do ip netns del $ns; done`);
  }

  /** @type {string[]} namespaces created, in order, for cleanup */
  const made = [];
  /** @type {Map<number, Handle>} process groups still running */
  const live = new Map();
  let logSeq = 0;
  /** @type {Promise<void> | null} */
  let destroying = null;
  let destroyed = false;

  const destroySync = () => {
    if (destroyed) return;
    destroyed = true;
    liveFleets.delete(fleet);
    for (const pid of live.keys()) killGroup(pid, 'SIGKILL');
    for (const ns of [...made].reverse()) {
      killInside(ns);
      // Deleting a namespace takes its veth ends with it, and the peer of a
      // veth goes when one end goes: nothing is left in the switch either.
      spawnSync('ip', ['netns', 'del', ns]);
    }
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  };

  /**
   * Runs `cmd args` inside `host`'s namespace in a new process group, its
   * output in a log file.
   * @param {Host} host
   * @param {string} cmd
   * @param {string[]} args
   * @param {SpawnOptions} [opts]
   * @returns {Handle}
   */
  const spawnIn = (host, cmd, args, opts = {}) => {
    if (destroying || destroyed) throw new Error('fleet: spawn after destroy() began');
    const label = (opts.name ?? cmd.split('/').pop() ?? 'cmd').replace(/[^A-Za-z0-9_.-]/g, '_');
    const logPath = join(dir, 'logs', `${String(++logSeq).padStart(3, '0')}-${host.name.slice(prefix.length + 1)}-${label}.log`);
    const fd = openSync(logPath, 'a');
    const secs = Math.ceil((opts.timeoutMs ?? lifetimeS * 1000) / 1000);
    // `timeout` is the safety net for a run that dies without cleaning up;
    // `ip netns exec` execs (no fork), so proc.pid is timeout's pid and the
    // group leader.
    const proc = spawn('ip', ['netns', 'exec', host.name, 'timeout', '--kill-after=5', `${secs}s`, cmd, ...args], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: opts.env ?? cleanEnv(),
      cwd: opts.cwd,
    });
    closeSync(fd);
    const pid = proc.pid;
    if (pid === undefined) throw new Error(`fleet: cannot start ${cmd} in ${host.name}`);
    const output = () => {
      try {
        return readFileSync(logPath, 'utf8');
      } catch {
        return '';
      }
    };
    /** @type {Promise<Exit>} */
    const exited = new Promise((resolve) => {
      proc.on('exit', (code, signal) => {
        // Descendants that outlived the leader go with it.
        killGroup(pid, 'SIGKILL');
        live.delete(pid);
        // timeout(1) exits 124 when it had to stop the command, 137 after
        // its own SIGKILL.
        resolve({ code, signal, timedOut: code === 124 || code === 137 });
      });
    });
    const stop = async () => {
      if (live.has(pid)) {
        killGroup(pid, 'SIGTERM');
        const grace = setTimeout(() => killGroup(pid, 'SIGKILL'), 5000);
        await exited;
        clearTimeout(grace);
      }
      return exited;
    };
    const commandPid = () => {
      try {
        const kids = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
        return kids.length ? Number(kids[0]) : undefined;
      } catch {
        return undefined;
      }
    };
    let ended = false;
    void exited.then(() => (ended = true));
    /** @type {(pattern: RegExp, timeoutMs: number) => Promise<string | null>} */
    const waitFor = async (pattern, timeoutMs) => {
      const end = Date.now() + timeoutMs;
      for (;;) {
        // Checked once more after the exit, so a line written just before it counts.
        const gone = ended;
        const line = output().split('\n').find((l) => pattern.test(l));
        if (line !== undefined) return line;
        if (gone || Date.now() > end) return null;
        await sleep(100);
      }
    };
    /** @type {Handle} */
    const handle = { proc, logPath, exited, output, stop, commandPid, waitFor };
    live.set(pid, handle);
    return handle;
  };

  /**
   * A short command inside `host`'s namespace; never rejects.
   * @param {Host} host
   * @param {string} cmd
   * @param {string[]} args
   * @param {{ timeoutMs?: number, env?: NodeJS.ProcessEnv }} [opts]
   * @returns {Promise<ExecResult>}
   */
  const exec = (host, cmd, args, opts = {}) =>
    new Promise((resolve) => {
      execFile(
        'ip',
        ['netns', 'exec', host.name, cmd, ...args],
        { encoding: 'utf8', timeout: opts.timeoutMs ?? 60_000, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, env: opts.env ?? cleanEnv() },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
          resolve({ code, stdout, stderr: stderr || (err && code === null ? err.message : '') });
        },
      );
    });

  /**
   * Bytes sent by `host`'s eth0 so far (link-layer, as the kernel counts them).
   * @param {Host} host
   */
  const txBytes = async (host) => {
    const r = await exec(host, 'cat', ['/sys/class/net/eth0/statistics/tx_bytes']);
    const v = Number(r.stdout.trim());
    if (r.code !== 0 || !Number.isSafeInteger(v)) throw new Error(`fleet: cannot read tx_bytes of ${host.name}: ${r.stderr}`);
    return v;
  };

  /**
   * Pids of the processes inside `host`'s namespace now (to check that a
   * stop left nothing behind).
   * @param {Host} host
   * @returns {number[]}
   */
  const pids = (host) => nsPids(host.name);

  const destroy = () => {
    destroying ??= (async () => {
      // Gently first, so daemons can say goodbye (a proxy stops its aria2c);
      // destroySync then kills whatever is left in the namespaces.
      await Promise.all([...live.values()].map((h) => h.stop()));
      destroySync();
    })();
    return destroying;
  };

  const fleet = {
    prefix,
    subnet: `${net}.0/24`,
    dir,
    mirror,
    clients,
    hosts,
    spawn: spawnIn,
    exec,
    txBytes,
    pids,
    destroy,
    destroySync,
    /** True once destroy() began (a signal may start it): work in progress should give up quietly. */
    get closing() {
      return destroying !== null || destroyed;
    },
  };
  hookProcess();
  liveFleets.add(fleet);

  try {
    const addNs = (/** @type {string} */ ns) => {
      run('ip', ['netns', 'add', ns]);
      made.push(ns);
      run('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    };
    addNs(sw);
    run('ip', ['-n', sw, 'link', 'add', 'br0', 'type', 'bridge']);
    run('ip', ['-n', sw, 'link', 'set', 'br0', 'up']);
    for (const h of hosts) {
      addNs(h.name);
      // The switch-side end keeps a short name of its own (15 characters
      // at most); the host side is eth0, as on a real machine.
      const port = h.role === 'mirror' ? 'p-mirror' : `p-c${h.index}`;
      run('ip', ['-n', sw, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.name]);
      run('ip', ['-n', sw, 'link', 'set', port, 'master', 'br0']);
      run('ip', ['-n', sw, 'link', 'set', port, 'up']);
      run('ip', ['-n', h.name, 'addr', 'add', `${h.ip}/24`, 'dev', 'eth0']);
      run('ip', ['-n', h.name, 'link', 'set', 'eth0', 'up']);
    }
    // Only what the mirror sends is limited: its uplink is the scarce thing
    // a fleet shares; the clients' LAN is fast.
    if (o.uplinkMbit > 0) {
      run('tc', ['-n', mirror.name, 'qdisc', 'add', 'dev', 'eth0', 'root', 'tbf', 'rate', `${o.uplinkMbit}mbit`, 'burst', '256kb', 'latency', '100ms']);
    }
    await checkConnectivity(fleet);
  } catch (err) {
    destroySync();
    throw err;
  }
  return fleet;
}

/**
 * A client that cannot reach the mirror would make any figure meaningless:
 * each client fetches a line from a tiny TCP server on the mirror.
 * @param {{ mirror: Host, clients: Host[], spawn: (h: Host, c: string, a: string[], o?: SpawnOptions) => Handle, exec: (h: Host, c: string, a: string[], o?: { timeoutMs?: number }) => Promise<ExecResult> }} fleet
 */
async function checkConnectivity(fleet) {
  const port = 9; // "discard": unused by anything we start
  const server = fleet.spawn(
    fleet.mirror,
    process.execPath,
    ['-e', `require('net').createServer((s) => s.end('pkgt-ok\\n')).listen(${port}, '${fleet.mirror.ip}', () => console.log('listening'))`],
    { name: 'connectivity', timeoutMs: 60_000 },
  );
  try {
    if ((await server.waitFor(/listening/, 10_000)) === null) throw new Error(`fleet: the connectivity check's server did not start in ${fleet.mirror.name}:\n${server.output()}`);
    const probe = `const s = require('net').connect(${port}, '${fleet.mirror.ip}'); let d = ''; s.on('data', (c) => (d += c)); s.on('end', () => process.exit(d.includes('pkgt-ok') ? 0 : 1)); s.on('error', (e) => { console.error(e.message); process.exit(1); }); setTimeout(() => { console.error('timed out'); process.exit(1); }, 2000);`;
    /** @type {string[]} */
    const failed = [];
    await Promise.all(
      fleet.clients.map(async (c) => {
        // A just-created bridge port may need a moment before it forwards.
        let last = '';
        for (let attempt = 0; attempt < 5; attempt++) {
          const r = await fleet.exec(c, process.execPath, ['-e', probe], { timeoutMs: 10_000 });
          if (r.code === 0) return;
          last = r.stderr.trim();
          await sleep(500);
        }
        failed.push(`${c.name} (${c.ip}): ${last}`);
      }),
    );
    if (failed.length) throw new Error(`fleet: clients cannot reach the mirror ${fleet.mirror.ip}:${port} over the bridge:\n  ${failed.join('\n  ')}`);
  } finally {
    await server.stop();
  }
}

/** @param {number} ms */
function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * @typedef {object} FleetTracker
 * @property {string} announce HTTP announce URL on the mirror
 * @property {string} whitelistPath opentracker's access.whitelist (absolute)
 * @property {string} pidFile file holding the pid of opentracker itself (for a SIGHUP from elsewhere)
 * @property {number} pid pid of opentracker itself
 * @property {Handle} handle
 * @property {(...infoHashesHex: string[]) => Promise<void>} allow whitelists and waits until announces for them are accepted
 * @property {() => Promise<Exit>} stop
 */

// A hash nobody uses: the readiness probe expects it to be refused.
const PROBE_HASH = '00'.repeat(20);

/**
 * The query of a probe's HTTP announce (a fake peer on port 1) for an info
 * hash: a whitelisting tracker answers it with a failure reason unless the
 * hash is listed. Shared with test/helpers/opentracker.ts.
 * @param {string} infoHashHex
 * @param {string} event
 */
export function announceQuery(infoHashHex, event) {
  const ih = Buffer.from(infoHashHex, 'hex');
  return [
    `info_hash=${Array.from(ih, (b) => `%${b.toString(16).padStart(2, '0')}`).join('')}`,
    'peer_id=-PT0001-probeprobepr',
    'port=1',
    'uploaded=0',
    'downloaded=0',
    'left=0',
    'compact=1',
    `event=${event}`,
  ].join('&');
}

/**
 * SHA-256 of a file, hex: the bench's and the fleet test's check that a
 * client's copy is the mirror's.
 * @param {string} path
 * @returns {Promise<string>}
 */
export function sha256File(path) {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (b) => h.update(b))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
}

/**
 * Debian's opentracker on the mirror host, port 6969 TCP and UDP. Debian
 * builds it in whitelist mode: an announce for an info hash not on the
 * whitelist is refused. It reads the whitelist from inside the directory it
 * chroots into (-d), reloads it on SIGHUP, and as root drops to `nobody`,
 * so its files must be world-readable. One tracker per fleet at a time
 * (fixed port): stop() the old one before starting another.
 * @param {{ mirror: Host, dir: string, spawn: (h: Host, c: string, a: string[], o?: SpawnOptions) => Handle, exec: (h: Host, c: string, a: string[], o?: { timeoutMs?: number }) => Promise<ExecResult> }} fleet
 * @returns {Promise<FleetTracker>}
 */
export async function startTracker(fleet) {
  const port = 6969;
  const host = fleet.mirror;
  const base = `http://${host.ip}:${port}`;
  const dir = mkdtempSync(join(fleet.dir, 'opentracker-'));
  chmodSync(dir, 0o755); // mkdtemp makes it 0700; `nobody` reads inside
  const whitelistPath = join(dir, 'whitelist');
  // Not empty: for an empty file opentracker warns "Can't open accesslist
  // file" (and refuses everything, which is what we want, but the warning
  // misleads whoever reads its log). The placeholder is not the probe hash.
  writeFileSync(whitelistPath, `${'ff'.repeat(20)}\n`, { mode: 0o644 });
  writeFileSync(join(dir, 'opentracker.conf'), 'access.whitelist whitelist\n', { mode: 0o644 });

  /**
   * One announce from inside the mirror's namespace (our own namespace has
   * no route to the fleet); the reply as text, '' when it did not answer.
   * @param {string} infoHashHex
   * @param {string} event
   */
  const announce = async (infoHashHex, event) => {
    const r = await fleet.exec(host, 'curl', ['-s', '--max-time', '2', `${base}/announce?${announceQuery(infoHashHex, event)}`], { timeoutMs: 5000 });
    return r.code === 0 ? r.stdout : '';
  };

  const handle = fleet.spawn(host, 'opentracker', ['-i', host.ip, '-p', String(port), '-P', String(port), '-d', dir, '-f', join(dir, 'opentracker.conf')], { name: 'opentracker' });
  let ready = false;
  for (let i = 0; i < 50 && !ready; i++) {
    // Ready when it answers an announce and refuses the probe hash (which
    // also shows the whitelist is in force).
    ready = (await announce(PROBE_HASH, 'started')).includes('failure reason');
    if (!ready) await sleep(100);
  }
  const pid = handle.commandPid();
  if (!ready || pid === undefined) {
    await handle.stop();
    throw new Error(`opentracker did not start on ${host.ip}:${port} in ${host.name}\n${handle.output()}`);
  }
  const pidFile = join(dir, 'opentracker.pid');
  writeFileSync(pidFile, `${pid}\n`, { mode: 0o644 });

  // event=stopped skips the whitelist check, so acceptance needs a real
  // announce; a second one with event=stopped takes the fake peer (port 1)
  // out of the swarm again, so no client is ever handed it.
  const accepted = async (/** @type {string} */ h) => {
    const reply = await announce(h, 'started');
    if (!reply.startsWith('d') || reply.includes('failure reason')) return false;
    await announce(h, 'stopped');
    return true;
  };
  return {
    announce: `${base}/announce`,
    whitelistPath,
    pidFile,
    pid,
    handle,
    allow: async (...hashes) => {
      appendFileSync(whitelistPath, hashes.map((h) => `${h.toLowerCase()}\n`).join(''));
      process.kill(pid, 'SIGHUP'); // reloads the whitelist; not via the group, `timeout` would forward it and arm its kill
      for (let i = 0; i < 50; i++) {
        if ((await Promise.all(hashes.map(accepted))).every(Boolean)) return;
        await sleep(100);
      }
      throw new Error(`opentracker did not accept ${hashes.join(', ')} after SIGHUP\n${handle.output()}`);
    },
    stop: () => handle.stop(),
  };
}
