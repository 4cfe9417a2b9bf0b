// The BitTorrent engine: one aria2c process, started and supervised here
// (restarted when it dies) and driven over its JSON-RPC interface on
// loopback with a random secret. pkgtorrent never speaks BitTorrent itself.
//
// A restart loses every download of the old process: `generation` tells
// callers that a gid they hold is gone, so they fall back to plain HTTP.
import { spawn as nodeSpawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { PkgError } from './errors.js';

export type Spawn = (cmd: string, args: string[], opts: SpawnOptions) => ChildProcess;

export interface EngineOptions {
  /** Directory aria2 downloads into unless a download names its own. */
  dir: string;
  /** The aria2c binary (default: aria2c on PATH). */
  aria2c?: string;
  /** Process spawning, injected so tests can watch or replace it. */
  spawn?: Spawn;
  /** Peer discovery beyond the torrent's trackers: all off unless asked for. */
  dht?: boolean;
  lpd?: boolean;
  pex?: boolean;
  /** TCP port(s) for BitTorrent peers, aria2 syntax (default 6881-6999). */
  listenPort?: string;
  /** Seeding limits, as aria2's --seed-time (minutes) and --seed-ratio. */
  seedTimeMinutes?: number;
  seedRatio?: number;
  /** Bytes per second for all uploads, 0 = unlimited. */
  uploadLimit?: number;
  /** Downloads aria2 runs at once (seeding ones excluded). */
  maxDownloads?: number;
  /** HTTP connections to the web seed per download (aria2's --max-connection-per-server). */
  webSeedConnections?: number;
  log?: (line: string) => void;
  /** Called when aria2 answers again after it died and was restarted. */
  onRestart?: () => void;
}

export interface TorrentStatus {
  gid: string;
  status: 'active' | 'waiting' | 'paused' | 'error' | 'complete' | 'removed';
  totalLength: number;
  completedLength: number;
  uploadLength: number;
  /** Hex, highest bit = piece 0; absent before the download starts. */
  bitfield: string;
  pieceLength: number;
  numPieces: number;
  connections: number;
  numSeeders: number;
  seeder: boolean;
  /** Checking existing data (--check-integrity), or queued to. */
  verifying: boolean;
  errorMessage?: string;
  files: Array<{ path: string; length: number; selected: boolean }>;
}

/** A free TCP port on loopback (bound and released at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** The command-line options of the aria2c process, each checked against aria2c(1). */
export function aria2Args(o: EngineOptions, rpcPort: number, secret: string, parentPid: number): string[] {
  const flag = (on: boolean | undefined) => (on ? 'true' : 'false');
  return [
    '--no-conf',
    '--enable-rpc',
    '--rpc-listen-all=false',
    `--rpc-listen-port=${rpcPort}`,
    `--rpc-secret=${secret}`,
    // Torrents come over RPC and must not litter the download directory.
    '--rpc-save-upload-metadata=false',
    `--stop-with-process=${parentPid}`,
    `--dir=${o.dir}`,
    `--enable-dht=${flag(o.dht)}`,
    `--enable-dht6=${flag(o.dht)}`,
    `--bt-enable-lpd=${flag(o.lpd)}`,
    `--enable-peer-exchange=${flag(o.pex)}`,
    `--listen-port=${o.listenPort ?? '6881-6999'}`,
    `--seed-time=${o.seedTimeMinutes ?? 60}`,
    `--seed-ratio=${o.seedRatio ?? 0}`,
    `--max-overall-upload-limit=${o.uploadLimit ?? 0}`,
    `--max-concurrent-downloads=${o.maxDownloads ?? 16}`,
    // A seeding torrent must not hold a slot a package manager is waiting for.
    '--bt-detach-seed-only=true',
    // One connection to the web seed is bound by aria2's own receive loop;
    // two, each on its own half of the file (splits no smaller than
    // --min-split-size, default 20M), beat a single curl on loopback.
    `--max-connection-per-server=${o.webSeedConnections ?? 2}`,
    `--split=${o.webSeedConnections ?? 2}`,
    // Pieces are read while they arrive: no preallocation to wait for.
    '--file-allocation=none',
    '--auto-file-renaming=false',
    '--allow-overwrite=true',
    '--summary-interval=0',
    '--console-log-level=warn',
    '--download-result=hide',
  ];
}

export class Aria2Engine {
  /** Bumped on every (re)start: gids of an earlier generation no longer exist. */
  generation = 0;
  private child: ChildProcess | null = null;
  private url = '';
  private secret = '';
  private closing = false;
  private starting: Promise<void> | null = null;
  private id = 0;

  private constructor(private readonly o: EngineOptions) {}

  static async start(o: EngineOptions): Promise<Aria2Engine> {
    const e = new Aria2Engine(o);
    await e.launch();
    return e;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  private launch(): Promise<void> {
    return (this.starting ??= this.spawnOnce().finally(() => (this.starting = null)));
  }

  private async spawnOnce(): Promise<void> {
    const port = await freePort();
    this.secret = randomBytes(18).toString('hex');
    this.url = `http://127.0.0.1:${port}/jsonrpc`;
    const spawn = this.o.spawn ?? nodeSpawn;
    const child = spawn(this.o.aria2c ?? 'aria2c', aria2Args(this.o, port, this.secret, process.pid), { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    this.generation++;
    let stderr = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (s: string) => {
      stderr = (stderr + s).slice(-2000);
    });
    const failedToSpawn = new Promise<never>((_, reject) =>
      child.once('error', (err) => reject(new PkgError('io', `cannot start aria2c: ${err.message}`))),
    );
    child.once('exit', (code, signal) => {
      if (this.child !== child || this.closing) return;
      this.child = null;
      this.o.log?.(`aria2c exited (${signal ?? code}); starting it again${stderr ? `: ${stderr.trim().split('\n').pop()}` : ''}`);
      setTimeout(() => void this.launch().catch((err: Error) => this.o.log?.(err.message)), 200).unref();
    });
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await Promise.race([this.rawCall('aria2.getVersion', []), failedToSpawn]);
        if (this.generation > 1) this.o.onRestart?.();
        return;
      } catch (err) {
        if (err instanceof PkgError && err.message.startsWith('cannot start')) throw err;
        if (child.exitCode !== null || Date.now() > deadline) {
          child.kill('SIGKILL');
          throw new PkgError('io', `aria2c did not start: ${stderr.trim() || (err as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  private async rawCall(method: string, params: unknown[]): Promise<unknown> {
    const res = await fetch(this.url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: String(++this.id), method, params: [`token:${this.secret}`, ...params] }),
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await res.json()) as { result?: unknown; error?: { message: string } };
    if (body.error) throw new PkgError('io', `aria2 ${method}: ${body.error.message}`);
    return body.result;
  }

  /** One RPC call; fails (never hangs) while the engine is down or restarting. */
  async call<T = unknown>(method: string, ...params: unknown[]): Promise<T> {
    if (this.closing) throw new PkgError('io', 'engine stopped');
    if (!this.child) throw new PkgError('io', 'engine not running');
    try {
      return (await this.rawCall(method, params)) as T;
    } catch (err) {
      if (err instanceof PkgError) throw err;
      throw new PkgError('io', `aria2 ${method}: ${(err as Error).message}`);
    }
  }

  /** Adds a torrent (bencoded bytes); web seeds and per-download options as aria2 takes them. */
  addTorrent(torrent: Buffer, webSeeds: string[], options: Record<string, string>): Promise<string> {
    return this.call<string>('aria2.addTorrent', torrent.toString('base64'), webSeeds, options);
  }

  async tellStatus(gid: string): Promise<TorrentStatus> {
    const r = await this.call<Record<string, unknown>>('aria2.tellStatus', gid);
    return parseStatus(r);
  }

  /** Sum of the download speeds of the connected peers (aria2 reports no per-source byte counts). */
  async peerSpeed(gid: string): Promise<number> {
    const peers = await this.call<Array<{ downloadSpeed: string }>>('aria2.getPeers', gid);
    return peers.reduce((n, p) => n + Number(p.downloadSpeed), 0);
  }

  /** Stops and forgets a download; a download already gone is not an error. */
  async remove(gid: string): Promise<void> {
    await this.call('aria2.forceRemove', gid).catch(() => undefined);
    await this.call('aria2.removeDownloadResult', gid).catch(() => undefined);
  }

  getGlobalOption(): Promise<Record<string, string>> {
    return this.call('aria2.getGlobalOption');
  }

  getOption(gid: string): Promise<Record<string, string>> {
    return this.call('aria2.getOption', gid);
  }

  async close(): Promise<void> {
    this.closing = true;
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
}

function parseStatus(r: Record<string, unknown>): TorrentStatus {
  const n = (k: string) => Number(r[k] ?? 0);
  const files = (r.files as Array<Record<string, string>> | undefined) ?? [];
  return {
    gid: String(r.gid),
    status: r.status as TorrentStatus['status'],
    totalLength: n('totalLength'),
    completedLength: n('completedLength'),
    uploadLength: n('uploadLength'),
    bitfield: typeof r.bitfield === 'string' ? r.bitfield : '',
    pieceLength: n('pieceLength'),
    numPieces: n('numPieces'),
    connections: n('connections'),
    numSeeders: n('numSeeders'),
    seeder: r.seeder === 'true',
    verifying: r.verifiedLength !== undefined || r.verifyIntegrityPending === 'true',
    errorMessage: r.errorMessage as string | undefined,
    files: files.map((f) => ({ path: f.path!, length: Number(f.length), selected: f.selected === 'true' })),
  };
}

/** How many leading pieces the bitfield marks verified: the prefix that may be served. */
export function verifiedPrefixPieces(bitfield: string): number {
  let n = 0;
  for (const ch of bitfield) {
    const v = parseInt(ch, 16);
    if (v === 15) {
      n += 4;
      continue;
    }
    for (let bit = 3; bit >= 0 && v & (1 << bit); bit--) n++;
    break;
  }
  return n;
}
