#!/usr/bin/env node
// What leaves the mirror when a fleet fetches the same package at once.
//
// N client machines fetch one package from one mirror whose uplink is
// limited, on a LAN built from network namespaces (test/helpers/fleet.mjs):
// the mirror, its tracker and the clients each have an eth0 on one bridge,
// so peers really can serve each other and the mirror's eth0 counts every
// byte it sends. Per mode it prints
//   - mirror egress / file: bytes the mirror's eth0 sent while the clients
//     fetched, over the package size (8 clients straight from the mirror
//     make about 8; the closer to 1, the more the fleet shared). All of it
//     counts: the package, torrents the proxies look up, tracker replies,
//     and link-layer headers (little: veth sends TCP in 64 KB segments, so
//     direct lands at 8.02-8.05 for 8 clients);
//   - fleet time: from the first client's start to the last client having
//     the whole file, and its ratio to `direct` in the same round;
//   - how many client copies are identical to the source (sha256).
// Modes (MODES below; a mode is a row: how serve runs, how a client fetches):
//   direct         curl from the mirror
//   proxy          curl through `pkgtorrent proxy` on each client
//   proxy+seed     the same, serve also with --seed (the origin seeder) and
//                  feeding the tracker itself (--tracker-whitelist,
//                  --tracker-pid-file): the bench only checks that the
//                  package's info hash reached the whitelist
//   aria2-webseed  plain aria2c on the service's torrent (a reference: what
//                  a BitTorrent client makes of the web seed plus peers)
// Fresh processes for every mode run: tracker (empty whitelist, then the
// package's info hash: added by the bench, or by serve in proxy+seed),
// serve, proxies.
//
//   npm run bench:swarm            (builds first; needs root, else it says why and exits 0)
//   BENCH_CLIENTS=8      client machines (1 works too: what a lone client pays)
//   BENCH_MB=64          package size, MiB (random bytes)
//   BENCH_MBIT=100       mirror uplink, Mbit/s (tbf on its eth0; clients unlimited)
//   BENCH_ARRIVAL=once   all clients start at the same moment; a number N
//                        starts client i at i*N seconds instead
//   BENCH_MODES=direct,proxy,proxy+seed,aria2-webseed
//   BENCH_ROUNDS=1       more: the modes run in turn each round (A B A B),
//                        then median and range per mode
//   BENCH_KEEP_LOGS=DIR  copy every process's log there at the end
//   BENCH_SEED_ARGS=     extra serve arguments for proxy+seed, after its own
//                        (--seed and the tracker's whitelist and pid file),
//                        split on spaces, e.g. "--seed-slots 4";
//                        {whitelist}, {trackerPidFile} and {mirrorIp} are
//                        replaced by this run's
import { execFile, execFileSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { chmodSync, closeSync, cpSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import bencode from 'bencode';
import { canCreateFleet, createFleet, sha256File, startTracker } from '../helpers/fleet.mjs';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(REPO, 'bin/pkgtorrent');
const PKG = 'fedora/Packages/bigpkg-1.0-1.x86_64.rpm';
const PKG_NAME = PKG.slice(PKG.lastIndexOf('/') + 1);
// A client that has no complete copy by then counts as failed.
const CLIENT_TIMEOUT_MS = 180_000;
// After the last client completes, bytes already on their way (socket
// buffers, the tbf queue) still leave the mirror: they are part of the cost.
const SETTLE_MS = 1000;

/**
 * @param {string} name
 * @param {number} dflt
 * @param {number} min
 * @param {boolean} [integer]
 */
function numberEnv(name, dflt, min, integer = true) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return dflt;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < min || (integer && !Number.isInteger(v))) usage(`${name}=${raw}: expected ${integer ? 'an integer' : 'a number'} >= ${min}`);
  return v;
}

/** @param {string} why */
function usage(why) {
  console.error(`bench:swarm: ${why}`);
  process.exit(2);
}

const CLIENTS = numberEnv('BENCH_CLIENTS', 8, 1);
const MB = numberEnv('BENCH_MB', 64, 1);
const MBIT = numberEnv('BENCH_MBIT', 100, 0, false);
const ROUNDS = numberEnv('BENCH_ROUNDS', 1, 1);
const ARRIVAL = (process.env.BENCH_ARRIVAL || 'once') === 'once' ? 'once' : numberEnv('BENCH_ARRIVAL', 0, 0, false);
const KEEP_LOGS = process.env.BENCH_KEEP_LOGS || '';
const SEED_ARGS = (process.env.BENCH_SEED_ARGS ?? '').split(' ').filter(Boolean);
const SIZE = MB * 1024 * 1024;

// ---------------------------------------------------------------- modes

/**
 * @typedef {object} Ctx  what a mode's functions get
 * @property {import('../helpers/fleet.mjs').Fleet} fleet
 * @property {import('../helpers/fleet.mjs').FleetTracker} tracker
 * @property {Run} run
 * @property {string} pkgUrl the package on the mirror
 * @property {string} torrentPath the service's torrent for it, fetched by a client
 *
 * @typedef {object} ClientSpec  where a client runs
 * @property {import('../helpers/fleet.mjs').Host} host
 * @property {number} i 1-based client number
 * @property {string} dir its own directory
 *
 * @typedef {object} Fetched
 * @property {boolean} ok
 * @property {number} doneAt epoch ms when it had the whole file
 * @property {string} [detail] why not
 *
 * @typedef {object} Client  what clientSetup prepares, before the clock starts
 * @property {string} file where the copy ends up
 * @property {() => Promise<Fetched>} fetch starts the download; resolves once the client has the whole file
 * @property {() => Promise<string[]>} [report] lines to print about it afterwards
 *
 * @typedef {object} Mode
 * @property {string} name
 * @property {(ctx: Ctx) => string[]} serveArgs added to serve's
 * @property {boolean} [feedsTracker] serve whitelists the info hashes it hands out (serveArgs has --tracker-whitelist): the bench does not
 * @property {(ctx: Ctx, c: ClientSpec) => Promise<Client>} clientSetup
 */

/** @type {Mode[]} */
const MODES = [
  { name: 'direct', serveArgs: () => [], clientSetup: curlClient },
  { name: 'proxy', serveArgs: () => [], clientSetup: proxyClient },
  {
    name: 'proxy+seed',
    serveArgs: (ctx) => [
      '--seed',
      '--tracker-whitelist',
      ctx.tracker.whitelistPath,
      '--tracker-pid-file',
      ctx.tracker.pidFile,
      ...SEED_ARGS.map((a) =>
        a.replaceAll('{whitelist}', ctx.tracker.whitelistPath).replaceAll('{trackerPidFile}', ctx.tracker.pidFile).replaceAll('{mirrorIp}', ctx.fleet.mirror.ip),
      ),
    ],
    feedsTracker: true,
    clientSetup: proxyClient,
  },
  { name: 'aria2-webseed', serveArgs: () => [], clientSetup: aria2Client },
];

/**
 * curl, straight from the mirror or (with `proxy`) through an HTTP proxy.
 * @param {Ctx} ctx
 * @param {ClientSpec} c
 * @param {string} [proxy]
 * @returns {Promise<Client>}
 */
async function curlClient(ctx, c, proxy) {
  const file = join(c.dir, PKG_NAME);
  const fetch = async () => {
    const args = ['-sS', '--fail', '--max-time', String(CLIENT_TIMEOUT_MS / 1000), ...(proxy ? ['-x', proxy] : []), '-o', file, ctx.pkgUrl];
    const h = ctx.run.client(c.host, 'curl', args, { name: 'curl', timeoutMs: CLIENT_TIMEOUT_MS + 10_000 });
    const e = await h.exited;
    const doneAt = Date.now();
    return e.code === 0 ? { ok: true, doneAt } : { ok: false, doneAt, detail: `curl exit ${e.code}: ${h.output().trim().slice(-500)}` };
  };
  return { file, fetch };
}

/**
 * `pkgtorrent proxy` on the client, started (and ready) before the clock
 * starts, as on a machine where it runs as a service; curl goes through it.
 * @param {Ctx} ctx
 * @param {ClientSpec} c
 * @returns {Promise<Client>}
 */
async function proxyClient(ctx, c) {
  const args = [BIN, 'proxy', '--port', '3142', '--store', join(c.dir, 'store'), '--bt-port', String(7000 + c.i), '--cache-dir', join(c.dir, 'cache')];
  const proxy = ctx.run.client(c.host, process.execPath, args, { name: 'proxy' });
  if ((await proxy.waitFor(/pkgtorrent: proxy on/, 30_000)) === null) throw new Error(`proxy on ${c.host.name} did not start:\n${proxy.output()}`);
  const viaCurl = await curlClient(ctx, c, 'http://127.0.0.1:3142');
  return {
    ...viaCurl,
    // The proxy's log line for the package says where its bytes came from
    // (torrent=, mirror=, peers ...). It is written once the answer ends,
    // which can be a moment after curl saw the last byte.
    report: async () => {
      await proxy.waitFor(new RegExp(PKG_NAME.replaceAll('.', '\\.')), 3000);
      const all = proxy.output().split('\n');
      const lines = all.filter((l) => l.includes('bigpkg'));
      const out = lines.length ? lines.map((l) => (l.includes('bytes=') ? l.slice(l.indexOf('bytes=')) : l)) : ['(no log line for the package)'];
      // When it fell back to the mirror, what else it said is the first
      // clue why (engine errors and the like): its lines other than the
      // access log's, which start with a timestamp.
      if (!lines.length || lines.some((l) => l.includes('fallback='))) {
        out.push(...all.filter((l) => l.trim() && !/^\d{4}-\d\d-\d\dT/.test(l) && !l.includes('proxy on')).slice(-10).map((l) => `  | ${l}`));
      }
      return out;
    },
  };
}

/**
 * Plain aria2c on the service's torrent: web seed (the mirror) plus the
 * other clients found through the tracker. It seeds on after completing
 * (stopped with the mode), so clients that finish first keep serving the
 * rest, as they would in a fleet; completion is the moment aria2 says so
 * (--on-bt-download-complete runs before seeding starts).
 * @param {Ctx} ctx
 * @param {ClientSpec} c
 * @returns {Promise<Client>}
 */
async function aria2Client(ctx, c) {
  const dl = join(c.dir, 'dl');
  mkdirSync(dl);
  const marker = join(c.dir, 'done');
  const hook = join(c.dir, 'done.sh');
  // The hook records its own clock reading: exact, where polling for the
  // marker would add up to one poll interval.
  writeFileSync(hook, `#!/bin/sh\ndate +%s%3N > '${marker}.tmp' && mv '${marker}.tmp' '${marker}'\n`);
  chmodSync(hook, 0o755);
  const args = [
    '--no-conf',
    `--dir=${dl}`,
    '--enable-dht=false',
    '--enable-dht6=false',
    '--bt-enable-lpd=false',
    '--enable-peer-exchange=false',
    '--disable-ipv6=true',
    `--listen-port=${7000 + c.i}`,
    // Longer than any run: seeding ends when the mode stops it.
    '--seed-time=1000',
    '--seed-ratio=0.0',
    `--on-bt-download-complete=${hook}`,
    '--file-allocation=none',
    '--auto-file-renaming=false',
    '--allow-overwrite=true',
    '--summary-interval=0',
    '--console-log-level=notice',
    `--stop-with-process=${process.pid}`,
    ctx.torrentPath,
  ];
  const fetch = async () => {
    const h = ctx.run.client(c.host, 'aria2c', args, { name: 'aria2c', timeoutMs: CLIENT_TIMEOUT_MS + 60_000 });
    let exited = false;
    void h.exited.then(() => (exited = true));
    const end = Date.now() + CLIENT_TIMEOUT_MS;
    while (Date.now() < end) {
      if (existsSync(marker)) return { ok: true, doneAt: Number(readFileSync(marker, 'utf8').trim()) };
      if (exited) break;
      await sleep(100);
    }
    return { ok: false, doneAt: Date.now(), detail: `aria2c ${exited ? `exited (${(await h.exited).code})` : 'still running'} without completing:\n${h.output().trim().slice(-800)}` };
  };
  return { file: join(dl, PKG_NAME), fetch };
}

// ---------------------------------------------------------------- one mode run

/**
 * The processes one mode run started, so all of them stop at its end:
 * clients first, so serve has no requests in flight when it stops.
 */
class Run {
  /**
   * @param {import('../helpers/fleet.mjs').Fleet} fleet
   * @param {string} label starts the log file names (round and mode), for BENCH_KEEP_LOGS
   */
  constructor(fleet, label) {
    this.fleet = fleet;
    this.label = label;
    /** @type {import('../helpers/fleet.mjs').Handle[]} */
    this.infras = [];
    /** @type {import('../helpers/fleet.mjs').Handle[]} */
    this.clients = [];
  }

  /** @param {Parameters<import('../helpers/fleet.mjs').Fleet['spawn']>} a */
  spawn([host, cmd, args, opts = {}]) {
    return this.fleet.spawn(host, cmd, args, { ...opts, name: `${this.label}-${opts.name ?? cmd}` });
  }

  /** @param {Parameters<import('../helpers/fleet.mjs').Fleet['spawn']>} a */
  infra(...a) {
    const h = this.spawn(a);
    this.infras.push(h);
    return h;
  }

  /** @param {Parameters<import('../helpers/fleet.mjs').Fleet['spawn']>} a */
  client(...a) {
    const h = this.spawn(a);
    this.clients.push(h);
    return h;
  }

  async stop() {
    await Promise.all(this.clients.map((h) => h.stop()));
    await Promise.all(this.infras.map((h) => h.stop()));
    // Nothing may carry over into the next mode (a leftover aria2c would
    // hold a port, or seed).
    for (const host of this.fleet.hosts) {
      const left = this.fleet.pids(host);
      if (left.length) {
        console.log(`  warning: processes left in ${host.name} after the mode stopped: ${left.join(' ')}; killing them`);
        for (const pid of left) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone meanwhile
          }
        }
      }
    }
  }
}

/**
 * @typedef {object} Outcome
 * @property {string} mode
 * @property {number} round
 * @property {string} [unavailable] why the mode could not run
 * @property {number} [egress] mirror bytes sent / file size
 * @property {number} [fleetS] first start to last completion, seconds
 * @property {number[]} [clientS] each completed client's own time, seconds
 * @property {number} [identical] client copies equal to the source
 * @property {number} [failed] clients without a complete copy in time
 * @property {string[]} [notes] per-client lines (failures, proxy logs)
 */

/**
 * @param {import('../helpers/fleet.mjs').Fleet} fleet
 * @param {Mode} mode
 * @param {number} round
 * @param {{ root: string, cache: string, trackers: string, sha256: string, pkgUrl: string, torrentUrl: string }} s
 * @returns {Promise<Outcome>}
 */
async function runMode(fleet, mode, round, s) {
  const label = `r${round}-${mode.name.replace(/[^a-z0-9]/g, '_')}`;
  const dir = join(fleet.dir, label);
  mkdirSync(dir);
  const run = new Run(fleet, label);
  try {
    // A fresh tracker for every mode: peers of an earlier mode must not be
    // handed out.
    const tracker = await startTracker(fleet);
    run.infras.push(tracker.handle);
    /** @type {Ctx} */
    const ctx = { fleet, tracker, run, pkgUrl: s.pkgUrl, torrentPath: join(dir, `${PKG_NAME}.torrent`) };
    const serveArgs = [BIN, 'serve', '--root', s.root, '--cache-dir', s.cache, '--files', '--host', fleet.mirror.ip, '--port', '80', '--trackers', s.trackers, ...mode.serveArgs(ctx)];
    const serve = run.infra(fleet.mirror, process.execPath, serveArgs, { name: 'serve' });
    if ((await serve.waitFor(/pkgtorrent: serving/, 30_000)) === null) {
      // A flag this serve does not know yet (--seed while it is being
      // added) is not this benchmark's failure: say so and go on.
      const exit = await within(serve.exited, 2000, () => null);
      if (exit?.code === 2 && /unknown option/.test(serve.output())) return { mode: mode.name, round, unavailable: serve.output().trim().split('\n').pop() ?? '' };
      throw new Error(`serve did not start for ${mode.name}:\n${serve.output()}`);
    }

    // The torrent as a client gets it, and its info hash on the whitelist
    // before any client announces: put there by serve itself, which adds it
    // before the torrent leaves (so it is in the file once curl has the
    // torrent), or else by the bench.
    const first = fleet.clients[0];
    if (!first) throw new Error('no clients');
    const got = await fleet.exec(first, 'curl', ['-sS', '--fail', '--max-time', '60', '-o', ctx.torrentPath, s.torrentUrl]);
    if (got.code !== 0) throw new Error(`cannot fetch ${s.torrentUrl}: ${got.stderr}`);
    const infoHash = infoHashOf(readFileSync(ctx.torrentPath));
    if (!mode.feedsTracker) await tracker.allow(infoHash);
    else if (!readFileSync(tracker.whitelistPath, 'utf8').split('\n').some((l) => l.trim() === infoHash)) {
      throw new Error(`${mode.name}: serve handed out the torrent but did not add its info hash ${infoHash} to the tracker's whitelist ${tracker.whitelistPath}:\n${serve.output().trim().slice(-2000)}`);
    }

    const clients = await Promise.all(
      fleet.clients.map((host, k) => {
        const cdir = join(dir, `c${k + 1}`);
        mkdirSync(cdir);
        return mode.clientSetup(ctx, { host, i: k + 1, dir: cdir });
      }),
    );

    const tx0 = await fleet.txBytes(fleet.mirror);
    const t0 = Date.now();
    const results = await Promise.all(
      clients.map(async (c, k) => {
        if (ARRIVAL !== 'once' && k > 0) await sleep(t0 + k * ARRIVAL * 1000 - Date.now());
        const started = Date.now();
        const r = await within(c.fetch(), CLIENT_TIMEOUT_MS, () => ({ ok: false, doneAt: Date.now(), detail: `no complete copy after ${CLIENT_TIMEOUT_MS / 1000} s` }));
        return { ...r, started };
      }),
    );
    const done = results.filter((r) => r.ok);
    const lastDone = done.length ? Math.max(...done.map((r) => r.doneAt)) : NaN;
    await sleep(SETTLE_MS);
    const tx1 = await fleet.txBytes(fleet.mirror);

    /** @type {string[]} */
    const notes = [];
    let identical = 0;
    for (const [k, c] of clients.entries()) {
      const r = results[k];
      const same = r?.ok && existsSync(c.file) && (await sha256File(c.file)) === s.sha256;
      if (same) identical++;
      if (!r?.ok) notes.push(`c${k + 1}: FAILED: ${r?.detail ?? ''}`);
      else if (!same) notes.push(`c${k + 1}: its copy differs from the source (${existsSync(c.file) ? statSync(c.file).size : 'no'} bytes)`);
      if (c.report) for (const line of await c.report()) notes.push(`c${k + 1}: ${line}`);
    }
    return {
      mode: mode.name,
      round,
      egress: (tx1 - tx0) / SIZE,
      fleetS: (lastDone - t0) / 1000,
      clientS: done.map((r) => (r.doneAt - r.started) / 1000),
      identical,
      failed: results.length - done.length,
      notes,
    };
  } finally {
    await run.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- helpers

/** @param {number} ms */
function sleep(ms) {
  return new Promise((r) => setTimeout(r, Math.max(0, ms)));
}

/**
 * `p`, or `late()` if it has not settled after `ms` (the timer does not
 * outlive the race, so it cannot keep the process alive).
 * @template T, U
 * @param {Promise<T>} p
 * @param {number} ms
 * @param {() => U} late
 * @returns {Promise<T | U>}
 */
function within(p, ms, late) {
  /** @type {NodeJS.Timeout | undefined} */
  let timer;
  const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve(late()), ms)));
  return /** @type {Promise<T | U>} */ (Promise.race([p, timeout]).finally(() => clearTimeout(timer)));
}

/**
 * The info hash: SHA-1 of the bencoded info dictionary. Re-encoding the
 * decoded dictionary gives back its bytes, as the service writes canonical
 * bencode (sorted keys).
 * @param {Buffer} torrent
 */
function infoHashOf(torrent) {
  const meta = /** @type {{ info?: unknown }} */ (bencode.decode(torrent));
  if (!meta.info) throw new Error('not a torrent: no info dictionary');
  return createHash('sha1').update(bencode.encode(meta.info)).digest('hex');
}


/** @param {number[]} xs */
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? NaN) : ((s[m - 1] ?? NaN) + (s[m] ?? NaN)) / 2;
};
/** @param {number} x @param {number} [d] */
const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-');
/** @param {number[]} xs @param {number} [d] */
const spread = (xs, d = 2) => (xs.length > 1 ? `${fmt(median(xs), d)} (${fmt(Math.min(...xs), d)}-${fmt(Math.max(...xs), d)})` : fmt(xs[0] ?? NaN, d));

/**
 * Which pkgtorrent the figures are of: src/ may change under a run (dist/
 * is what runs), so the commit, whether the tree had changes, and when
 * dist/ was last built.
 */
function buildInfo() {
  const git = (/** @type {string[]} */ ...a) => {
    try {
      return execFileSync('git', ['-C', REPO, ...a], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    } catch {
      return '';
    }
  };
  const commit = git('rev-parse', '--short', 'HEAD') || 'unknown commit';
  const dirty = git('status', '--porcelain', '--', 'src', 'bin') ? ' + uncommitted changes in src/ or bin/' : '';
  let newest = 0;
  const walk = (/** @type {string} */ d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else newest = Math.max(newest, statSync(join(d, e.name)).mtimeMs);
    }
  };
  try {
    walk(join(REPO, 'dist'));
  } catch {
    // no dist/: the first spawn will say so
  }
  return `${commit}${dirty}, dist/ built ${newest ? new Date(newest).toISOString() : 'never'}`;
}

/**
 * The line printed for one mode run.
 * @param {Outcome} o
 * @param {Outcome | undefined} direct the same round's direct run
 */
function line(o, direct) {
  const name = o.mode.padEnd(14);
  if (o.unavailable !== undefined) return `${name} not available (${o.unavailable})`;
  const vsDirect = direct?.fleetS !== undefined && o.fleetS !== undefined ? fmt(o.fleetS / direct.fleetS) : '-';
  const per = o.clientS?.length ? `clients ${fmt(Math.min(...o.clientS), 1)}-${fmt(Math.max(...o.clientS), 1)} s` : 'no client completed';
  const failed = o.failed ? `, ${o.failed} FAILED` : '';
  return `${name} egress/file ${fmt(o.egress ?? NaN).padStart(6)}   fleet ${fmt(o.fleetS ?? NaN, 1).padStart(6)} s (${per})   vs direct ${vsDirect.padStart(5)}   ${o.identical}/${CLIENTS} identical${failed}`;
}

// ---------------------------------------------------------------- main

const selected = (process.env.BENCH_MODES || MODES.map((m) => m.name).join(','))
  .split(',')
  .map((m) => m.trim())
  .filter(Boolean);
for (const m of selected) if (!MODES.some((x) => x.name === m)) usage(`unknown mode '${m}' in BENCH_MODES (known: ${MODES.map((x) => x.name).join(', ')})`);
const modes = MODES.filter((m) => selected.includes(m.name));

const can = canCreateFleet();
if (!can.ok) {
  console.log(`bench:swarm skipped: cannot build the namespace LAN here: ${can.why}`);
  process.exit(0);
}

console.log(
  `bench:swarm: ${CLIENTS} client${CLIENTS === 1 ? '' : 's'}, ${MB} MiB package, mirror uplink ${MBIT ? `${MBIT} Mbit/s` : 'unlimited'}, arrival ${ARRIVAL === 'once' ? 'all at once' : `every ${ARRIVAL} s`}, ${ROUNDS} round(s), modes ${modes.map((m) => m.name).join(' ')}`,
);
console.log(`pkgtorrent under test: ${buildInfo()}`);
console.log(`load average at start: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);

const fleet = await createFleet({ clients: CLIENTS, uplinkMbit: MBIT, tag: 'swarm' });
/** @type {Outcome[]} */
const outcomes = [];
try {
  const clientIps = CLIENTS === 1 ? `client ${fleet.clients[0]?.ip}` : `clients ${fleet.clients[0]?.ip}..${fleet.clients.at(-1)?.ip}`;
  console.log(`fleet ${fleet.prefix}: ${fleet.subnet}, mirror ${fleet.mirror.ip}, ${clientIps}`);
  // Everything lives in the fleet's scratch dir, which goes with the fleet
  // (also on Ctrl-C).
  const root = join(fleet.dir, 'root');
  const cache = join(fleet.dir, 'cache');
  const trackers = join(fleet.dir, 'trackers');
  mkdirSync(join(root, dirname(PKG)), { recursive: true });
  mkdirSync(cache);
  const sum = createHash('sha256');
  const fd = openSync(join(root, PKG), 'w');
  const chunk = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < MB; i++) {
    randomFillSync(chunk);
    sum.update(chunk);
    writeSync(fd, chunk);
  }
  closeSync(fd);
  const sha256 = sum.digest('hex');
  // The tracker restarts per mode, always at this address.
  writeFileSync(trackers, `http://${fleet.mirror.ip}:6969/announce\n`);
  // Hashed once, as the mirror's cron job would have: no mode pays for it.
  await promisify(execFile)(process.execPath, [BIN, 'hash', '--root', root, '--cache-dir', cache, '--quiet']);
  const s = {
    root,
    cache,
    trackers,
    sha256,
    pkgUrl: `http://${fleet.mirror.ip}/${PKG}`,
    torrentUrl: `http://${fleet.mirror.ip}/fedora/torrent_service/simple/${PKG}`,
  };

  /** @type {Set<string>} */
  const unavailable = new Set();
  for (let round = 1; round <= ROUNDS; round++) {
    if (ROUNDS > 1) console.log(`round ${round}/${ROUNDS}`);
    /** @type {Outcome[]} */
    const thisRound = [];
    for (const mode of modes) {
      if (unavailable.has(mode.name)) continue;
      const o = await runMode(fleet, mode, round, s);
      if (o.unavailable !== undefined) unavailable.add(mode.name);
      thisRound.push(o);
      outcomes.push(o);
      console.log(`  ${line(o, thisRound.find((x) => x.mode === 'direct'))}`);
      for (const n of o.notes ?? []) console.log(`      ${n}`);
    }
  }

  if (ROUNDS > 1) {
    console.log(`\nover ${ROUNDS} rounds: median (range)`);
    for (const mode of modes) {
      const os = outcomes.filter((o) => o.mode === mode.name && o.unavailable === undefined);
      if (!os.length) continue;
      const ratios = os.flatMap((o) => {
        const d = outcomes.find((x) => x.round === o.round && x.mode === 'direct');
        return d?.fleetS !== undefined && o.fleetS !== undefined ? [o.fleetS / d.fleetS] : [];
      });
      const failed = os.reduce((n, o) => n + (o.failed ?? 0), 0);
      console.log(
        `  ${mode.name.padEnd(14)} egress/file ${spread(os.map((o) => o.egress ?? NaN))}   fleet ${spread(
          os.map((o) => o.fleetS ?? NaN),
          1,
        )} s   vs direct ${ratios.length ? spread(ratios) : '-'}   ${failed ? `${failed} client runs FAILED` : 'all complete'}`,
      );
    }
  }
} catch (err) {
  // Ctrl-C: the fleet's signal handler is tearing everything down, and
  // whatever was in progress failed because of it. Not worth a stack trace.
  if (!fleet.closing) throw err;
} finally {
  if (KEEP_LOGS && !fleet.closing) {
    cpSync(join(fleet.dir, 'logs'), KEEP_LOGS, { recursive: true });
    console.log(`logs copied to ${KEEP_LOGS}`);
  }
  if (!fleet.closing) await fleet.destroy();
}
const bad = outcomes.some((o) => (o.failed ?? 0) > 0 || (o.unavailable === undefined && o.identical !== CLIENTS));
process.exitCode = bad ? 1 : 0;
