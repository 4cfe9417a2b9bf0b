// Real BitTorrent clients from Debian, driven fully offline on 127.0.0.1: no
// DHT, no local peer discovery, no UPnP/NAT-PMP, no peer exchange. Each one
// runs in its own process group under a hard timeout and is always stopped:
// on timeout, when the test ends (t.teardown), and when this process exits.
// As a last resort every command runs under coreutils `timeout`, so a client
// dies on its own even if the test process is killed before it can clean up.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, chmodSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { PY } from './oracles.js';

// ---------------------------------------------------------------- processes

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when our own timer (not the process) ended it. */
  timedOut: boolean;
}

export interface Proc {
  readonly child: ChildProcess;
  /** Resolves when the process (the group leader) has exited. */
  readonly exited: Promise<Exit>;
  /** stdout and stderr so far, interleaved, for failure messages. */
  output(): string;
  /** Stops the whole process group: SIGTERM, then SIGKILL after a grace period. */
  stop(graceMs?: number): Promise<Exit>;
  /**
   * The pid of the command itself (the child of the `timeout` wrapper), for
   * signals meant for it alone: `timeout` forwards a signal it receives, but
   * then also arms its SIGKILL.
   */
  commandPid(): number | undefined;
}

const live = new Set<number>();

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is already gone.
  }
}

// Synchronous last chance: 'exit' listeners cannot wait, but kill() is sync.
process.on('exit', () => {
  for (const pid of live) killGroup(pid, 'SIGKILL');
});

/** The fields of /proc/<pid>/stat after the command name that we use, or null once it is gone. */
export function procStat(pid: number | string): { state: string; ppid: number; pgrp: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and ')': split after the last ')'.
    const [state, ppid, pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: state!, ppid: Number(ppid), pgrp: Number(pgrp) };
  } catch {
    return null;
  }
}

/** Direct children of a process, from /proc (Linux). */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // Kernel without CONFIG_PROC_CHILDREN: scan every process's parent.
    return readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d) && procStat(d)?.ppid === pid)
      .map(Number);
  }
}

/**
 * Spawns `cmd args` as the leader of a new process group, under coreutils
 * `timeout` (the safety net if this process dies) and a timer of our own
 * (which kills the group and reports `timedOut`). The group is stopped when
 * the test `t` ends, whatever its outcome.
 */
export function startGroup(
  t: Test,
  cmd: string,
  args: string[],
  opts: { timeoutMs: number; env?: NodeJS.ProcessEnv; stdin?: 'pipe' | 'ignore'; onLine?: (line: string) => void },
): Proc {
  const hardSecs = Math.ceil(opts.timeoutMs / 1000) + 5;
  const child = spawn('timeout', ['--kill-after=2', `${hardSecs}s`, cmd, ...args], {
    env: opts.env ?? process.env,
    detached: true, // own process group, so killing -pid reaches every descendant
    stdio: [opts.stdin ?? 'ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`cannot start ${cmd}`);
  live.add(pid);
  const chunks: string[] = [];
  let partial = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    chunks.push(s);
    if (!opts.onLine) return;
    const lines = (partial + s).split('\n');
    partial = lines.pop()!;
    for (const l of lines) opts.onLine(l);
  });
  child.stderr!.setEncoding('utf8').on('data', (s: string) => chunks.push(s));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(pid, 'SIGKILL');
  }, opts.timeoutMs);
  const exited = new Promise<Exit>((resolve) => {
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      // Descendants that outlived the leader (a finish script, a forked
      // helper) go with it.
      killGroup(pid, 'SIGKILL');
      live.delete(pid);
      resolve({ code, signal, timedOut });
    });
  });
  const stop = async (graceMs = 3000): Promise<Exit> => {
    if (live.has(pid)) {
      killGroup(pid, 'SIGTERM');
      const grace = setTimeout(() => killGroup(pid, 'SIGKILL'), graceMs);
      await exited;
      clearTimeout(grace);
    }
    return exited;
  };
  t.teardown(() => stop());
  const commandPid = () => childrenOf(pid)[0];
  return { child, exited, output: () => chunks.join(''), stop, commandPid };
}

/** A TCP port that is free on 127.0.0.1 right now (and, with `udp`, free for UDP too). */
export async function freePort(udp = false): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    if (!udp) return port;
    const ok = await new Promise<boolean>((resolve) => {
      const u = createSocket('udp4');
      u.once('error', () => resolve(false));
      u.bind(port, '127.0.0.1', () => u.close(() => resolve(true)));
    });
    if (ok) return port;
  }
  throw new Error('no free port on 127.0.0.1');
}

/**
 * A fresh directory under the system temp dir, removed when `t` ends. Unlike
 * t.testdir (a fixed path per test name) it is unique per process, so two
 * runs of the same suite at once (two people, or CI and a person) do not
 * delete or fill each other's directories.
 */
export function scratch(t: Test, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `pkgtorrent-${prefix}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function describe(name: string, p: Proc, e: Exit, timeoutMs: number): string {
  const how = e.timedOut ? `timed out after ${timeoutMs} ms` : e.signal ? `killed by ${e.signal}` : `exit ${e.code}`;
  return `${name}: ${how}\n${p.output().slice(-4000)}`;
}

export interface DownloadResult {
  /** The client said it completed (and for a downloader, exited cleanly). */
  ok: boolean;
  /** Why not, with the tail of the client's output. */
  detail: string;
}

// ---------------------------------------------------------------- libtorrent

// Events go to stdout as JSON lines. The script stops when its stdin closes,
// so a seeder dies with its parent even without a signal.
const LT_SCRIPT = String.raw`
import json, sys, select, libtorrent as lt
torrent, save, opts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
def emit(**kw):
    sys.stdout.write(json.dumps(kw) + "\n"); sys.stdout.flush()
cat = lt.alert.category_t
ses = lt.session({
    # Loopback only; port 0 lets the kernel pick a free one.
    "listen_interfaces": "127.0.0.1:0", "outgoing_interfaces": "127.0.0.1",
    "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "alert_mask": cat.error_notification | cat.status_notification | cat.tracker_notification,
    # Every tier gets an announce, so both the HTTP and the UDP tracker are used.
    "announce_to_all_tiers": True, "announce_to_all_trackers": True,
    # Both peers of the peer-to-peer case are 127.0.0.1.
    "allow_multiple_connections_per_ip": True,
})
ti = lt.torrent_info(torrent)
atp = lt.add_torrent_params()
atp.ti = ti
atp.save_path = save
tf = lt.torrent_flags
atp.flags = (atp.flags | tf.disable_dht | tf.disable_lsd | tf.disable_pex) & ~tf.auto_managed & ~tf.paused
if opts.get("noWebSeed"):
    # Peers only: drop the url-list from the torrent and from the params.
    ti.set_web_seeds([])
    atp.url_seeds = []
    atp.flags |= tf.override_web_seeds
h = ses.add_torrent(atp)
hash_failed = 0
done = False
while True:
    r, _, _ = select.select([sys.stdin], [], [], 0.05)
    if r and not sys.stdin.buffer.read1(1):
        break
    for a in ses.pop_alerts():
        if isinstance(a, lt.hash_failed_alert):
            # Bad data from a web seed or peer; libtorrent fetches the piece
            # again, so the run ends in a timeout and this says why.
            hash_failed += 1
            emit(event="alert", type="hash_failed_alert", message=a.message())
        elif isinstance(a, (lt.url_seed_alert, lt.tracker_error_alert, lt.file_error_alert, lt.torrent_error_alert)):
            emit(event="alert", type=type(a).__name__, message=a.message())
        elif isinstance(a, lt.tracker_reply_alert):
            emit(event="alert", type="tracker_reply_alert", message=a.message())
    s = h.status()
    if not done and s.is_seeding:
        done = True
        emit(event="complete", hashFailed=hash_failed, payloadDownloaded=s.total_payload_download,
             webSeeds=[w for w in h.url_seeds()])
        if not opts.get("seed"):
            break
`;

interface LtEvent {
  event: 'complete' | 'alert';
  hashFailed?: number;
  payloadDownloaded?: number;
  webSeeds?: string[];
  type?: string;
  message?: string;
}

export interface LtResult extends DownloadResult {
  /** Pieces that failed their hash check (bad data from a web seed or peer). */
  hashFailed: number;
  payloadDownloaded: number;
  /** Web seeds the torrent had while downloading. */
  webSeeds: string[];
  /** Alerts seen: tracker replies and errors, web seed errors. */
  alerts: string[];
}

export interface LtOptions {
  timeoutMs?: number;
  /** Download from peers only: the torrent's web seeds are removed. */
  noWebSeed?: boolean;
}

function startLibtorrent(t: Test, torrent: string, dir: string, seed: boolean, opts: LtOptions) {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const events: LtEvent[] = [];
  let onEvent: (() => void) | undefined;
  const proc = startGroup(t, PY, ['-c', LT_SCRIPT, torrent, dir, JSON.stringify({ seed, noWebSeed: !!opts.noWebSeed })], {
    timeoutMs,
    stdin: 'pipe',
    onLine: (line) => {
      if (!line.startsWith('{')) return;
      events.push(JSON.parse(line) as LtEvent);
      onEvent?.();
    },
  });
  const result = (exit: Exit | undefined): LtResult => {
    const done = events.find((e) => e.event === 'complete');
    const cleanExit = exit === undefined || (exit.code === 0 && !exit.timedOut);
    return {
      ok: !!done && cleanExit,
      detail: done && cleanExit ? '' : describe(`libtorrent ${torrent}`, proc, exit ?? { code: null, signal: null, timedOut: false }, timeoutMs),
      hashFailed: done?.hashFailed ?? 0,
      payloadDownloaded: done?.payloadDownloaded ?? 0,
      webSeeds: done?.webSeeds ?? [],
      alerts: events.filter((e) => e.event === 'alert').map((e) => `${e.type}: ${e.message}`),
    };
  };
  // Resolves at the 'complete' event or when the process ends, whichever first.
  const completed = new Promise<Exit | undefined>((resolve) => {
    onEvent = () => {
      if (events.some((e) => e.event === 'complete')) resolve(undefined);
    };
    void proc.exited.then(resolve);
  });
  return { proc, result, completed };
}

/** Downloads `torrent` into `dir` with a fresh libtorrent session, then stops. */
export async function libtorrentDownload(t: Test, torrent: string, dir: string, opts: LtOptions = {}): Promise<LtResult> {
  const { proc, result } = startLibtorrent(t, torrent, dir, false, opts);
  return result(await proc.exited);
}

export interface Seeder extends LtResult {
  stop(): Promise<void>;
}

/**
 * Downloads `torrent` into `dir` and keeps seeding until stop() (or the end
 * of the test). Resolves once the download is complete.
 */
export async function libtorrentSeed(t: Test, torrent: string, dir: string, opts: LtOptions = {}): Promise<Seeder> {
  const { proc, result, completed } = startLibtorrent(t, torrent, dir, true, opts);
  const exit = await completed;
  const r = result(exit);
  return {
    ...r,
    stop: async () => {
      proc.child.stdin?.end(); // the script exits on EOF
      await proc.stop(3000);
    },
  };
}

// ---------------------------------------------------------------- aria2

export interface ClientOptions {
  timeoutMs?: number;
}

/** Downloads `torrent` into `dir` with aria2c, which exits once complete. */
export async function aria2Download(t: Test, torrent: string, dir: string, opts: ClientOptions = {}): Promise<DownloadResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const port = await freePort();
  const proc = startGroup(
    t,
    'aria2c',
    [
      '--no-conf', // no ~/.aria2/aria2.conf from the machine
      `--dir=${dir}`,
      '--enable-dht=false',
      '--enable-dht6=false',
      '--bt-enable-lpd=false',
      '--enable-peer-exchange=false',
      '--disable-ipv6=true',
      '--interface=127.0.0.1', // binds listening and outgoing sockets
      `--listen-port=${port}`,
      '--seed-time=0', // exit at completion instead of seeding
      '--check-integrity=true',
      '--file-allocation=none',
      '--auto-file-renaming=false',
      '--allow-overwrite=true',
      '--bt-tracker-connect-timeout=3',
      '--bt-tracker-timeout=5',
      '--console-log-level=notice',
      '--summary-interval=0',
      '--show-console-readout=false',
      `--stop-with-process=${process.pid}`, // dies with the test process
      torrent,
    ],
    { timeoutMs },
  );
  const exit = await proc.exited;
  // Exit 0 means every download finished; a piece that fails its hash is
  // fetched again, so bad data from the web seed ends as a timeout.
  const ok = exit.code === 0 && !exit.timedOut;
  return { ok, detail: ok ? '' : describe(`aria2c ${torrent}`, proc, exit, timeoutMs) };
}

// ---------------------------------------------------------------- Transmission

/**
 * Downloads `torrent` into `dir` with transmission-cli (3.00 in Debian 12:
 * deprecated upstream, but it works). It reads settings.json from its config
 * dir; a seed ratio limit of 0 makes it stop the torrent at completion, and
 * transmission-cli exits when its torrent stops. A finish script leaves a
 * marker, so "complete" does not rest on the exit alone.
 */
export async function transmissionDownload(t: Test, torrent: string, dir: string, opts: ClientOptions = {}): Promise<DownloadResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const cfg = scratch(t, 'transmission');
  const port = await freePort();
  writeFileSync(
    join(cfg, 'settings.json'),
    JSON.stringify({
      'dht-enabled': false,
      'lpd-enabled': false,
      'pex-enabled': false,
      'utp-enabled': false,
      'port-forwarding-enabled': false,
      'bind-address-ipv4': '127.0.0.1',
      'bind-address-ipv6': '::1',
      'peer-port': port,
      'peer-port-random-on-start': false,
      'blocklist-enabled': false,
      'rpc-enabled': false,
      'ratio-limit-enabled': true,
      'ratio-limit': 0,
      'message-level': 2,
    }),
  );
  const marker = join(cfg, 'complete');
  const script = join(cfg, 'finished.sh');
  writeFileSync(script, `#!/bin/sh\necho "$TR_TORRENT_HASH" > '${marker}'\n`);
  chmodSync(script, 0o755);
  const proc = startGroup(t, 'transmission-cli', ['--config-dir', cfg, '--download-dir', dir, '--finish', script, '--no-portmap', torrent], {
    timeoutMs,
    // It writes progress with \r to the terminal; keep its home out of ~.
    env: { ...process.env, HOME: cfg, TRANSMISSION_HOME: cfg },
  });
  const exit = await proc.exited;
  const ok = exit.code === 0 && !exit.timedOut && existsSync(marker);
  return { ok, detail: ok ? '' : describe(`transmission-cli ${torrent}`, proc, exit, timeoutMs) };
}
