// The libtorrent engine: one `pkgtorrent-bt` process (bin/pkgtorrent-bt, a
// small Python program over Debian's and Fedora's python3-libtorrent),
// started and supervised here (restarted when it dies) and driven over its
// stdin/stdout, one JSON object per line. It exits when its stdin closes, so
// it never outlives this process.
//
// It is the engine of the origin seeder (`serve --seed`): aria2 cannot
// seed files it did not download without re-hashing them, and its web-seed
// and seeding logic sends the same pieces from the mirror many times (see
// pkgtorrent-service(8), ORIGIN SEEDER). A restart loses every torrent of the
// old process: `generation` tells callers that what they added is gone.
import { spawn as nodeSpawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { PkgError } from './errors.js';

export type Spawn = (cmd: string, args: string[], opts: SpawnOptions) => ChildProcess;

/** The engine program shipped in bin/. */
export const ENGINE_PROGRAM = fileURLToPath(new URL('../../bin/pkgtorrent-bt', import.meta.url));

export interface BtEngineOptions {
  /** Address and port peers connect to, libtorrent's syntax: "0.0.0.0:6881". */
  listen: string;
  /** Bytes per second uploaded, all torrents (0: unlimited). */
  uploadLimit?: number;
  /** Ports after `listen`'s tried when it is taken. */
  retryPorts?: number;
  /** Most peer connections at once, all torrents. */
  connections?: number;
  /** Peers uploaded to at once (libtorrent's unchoke slots). */
  unchokeSlots?: number;
  dht?: boolean;
  lpd?: boolean;
  pex?: boolean;
  /** Several peers on one address (tests on 127.0.0.1). */
  loopback?: boolean;
  /** The mirror's origin seeder: its peer id tells clients its bytes are the mirror's. */
  origin?: boolean;
  /** The engine program (default: bin/pkgtorrent-bt). */
  program?: string;
  spawn?: Spawn;
  log?: (line: string) => void;
  /** Called when the engine answers again after it died and was restarted. */
  onRestart?: () => void;
  /** Engine events: {event: 'finished'|'error'|..., ih?, message?}. */
  onEvent?: (e: EngineEvent) => void;
}

export interface EngineEvent {
  event: string;
  ih?: string;
  message?: string;
  port?: number;
}

export interface AddOptions {
  /** The bencoded torrent; its web seeds are ignored. */
  torrent: Buffer;
  /** Directory the torrent's name is found in. */
  savePath: string;
  /** Every piece is present and trusted (the caller validated the files): seed without hashing. */
  seed?: boolean;
  /** Tracker URLs replacing the torrent's. */
  trackers?: string[];
}

export interface BtStatus {
  state: string;
  seeding: boolean;
  /** Bitfield of verified pieces, highest bit = piece 0. */
  have: Buffer;
  numHave: number;
  peers: number;
  seeds: number;
  /** Payload bytes received from peers / sent to peers, this engine process. */
  downloaded: number;
  uploaded: number;
  downloadRate: number;
  uploadRate: number;
  error: string;
  /** Payload bytes received, by peer address, counted block by block. */
  byIp: Record<string, number>;
  /** Of those, the bytes from a mirror's origin seeder (told by its peer id). */
  fromOrigin: number;
  /** The most peers a tracker named so far; null before any tracker answered. */
  trackerPeers: number | null;
  /** With `detail`: pieces some connected peer has, and pieces being downloaded now. */
  available?: Buffer;
  downloading?: number[];
}

export interface BtListEntry {
  ih: string;
  uploaded: number;
  peers: number;
  seeding: boolean;
  uploadRate: number;
}

/** The engine program's command line, each flag one it defines (bin/pkgtorrent-bt, parse_args). */
export function engineArgs(o: BtEngineOptions): string[] {
  const args = ['--listen', o.listen];
  if (o.retryPorts) args.push('--retry-ports', String(o.retryPorts));
  if (o.uploadLimit) args.push('--upload-limit', String(o.uploadLimit));
  if (o.connections) args.push('--connections', String(o.connections));
  if (o.unchokeSlots) args.push('--unchoke-slots', String(o.unchokeSlots));
  if (o.dht) args.push('--dht');
  if (o.lpd) args.push('--lpd');
  if (o.pex) args.push('--pex');
  if (o.loopback) args.push('--loopback');
  if (o.origin) args.push('--origin');
  return args;
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

export class BtEngine {
  /** Bumped on every (re)start: torrents added to an earlier generation no longer exist. */
  generation = 0;
  version = '';
  private child: ChildProcess | null = null;
  private pending = new Map<number, Pending>();
  private id = 0;
  private closing = false;
  private starting: Promise<void> | null = null;

  private constructor(private readonly o: BtEngineOptions) {}

  static async start(o: BtEngineOptions): Promise<BtEngine> {
    const e = new BtEngine(o);
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
    const spawn = this.o.spawn ?? nodeSpawn;
    const program = this.o.program ?? ENGINE_PROGRAM;
    const child = spawn(program, engineArgs(this.o), { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child = child;
    this.generation++;
    let stderr = '';
    let answered = false;
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (s: string) => {
      stderr = (stderr + s).slice(-2000);
    });
    let buf = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (s: string) => {
      buf += s;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        this.onLine(line);
      }
    });
    // A write after the engine died must not crash us: the exit handler reports it.
    child.stdin?.on('error', () => undefined);
    const failed = new Promise<never>((_, reject) => {
      child.once('error', (err) => reject(new PkgError('io', `cannot start the BitTorrent engine ${program}: ${err.message} (it needs python3-libtorrent)`)));
      // 'close', not 'exit': only then has all of its stderr (the reason) arrived.
      child.once('close', (code, signal) =>
        reject(new PkgError('io', `the BitTorrent engine exited at start (${signal ?? code}): ${lastLine(stderr) || 'no message'}${/libtorrent/.test(stderr) ? ' (install python3-libtorrent)' : ''}`)),
      );
    });
    failed.catch(() => undefined);
    child.once('exit', (code, signal) => {
      const lost = [...this.pending.values()];
      this.pending.clear();
      for (const p of lost) p.reject(new PkgError('io', 'engine exited'));
      if (this.child !== child || this.closing) return;
      this.child = null;
      // One that never answered failed to start: start() reports it; restarting would only fail again.
      if (!answered) return;
      // A crash's Python stack (faulthandler) is what a bug report needs: all of it.
      const said = signal ? stderr.trim().split('\n').slice(-12).join(' | ') : lastLine(stderr);
      this.o.log?.(`BitTorrent engine exited (${signal ?? code}); starting it again${said ? `: ${said}` : ''}`);
      // Not after close(): a closed engine must not come back (its process would outlive the caller's).
      setTimeout(() => void (this.closing || this.launch().catch((err: Error) => this.o.log?.(err.message))), 200).unref();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    try {
      // A ping lost to the engine's exit waits for the exit's own reason (its stderr).
      const ping = this.rawCall('ping', {}).catch(async (err: Error) => {
        await failed;
        throw err;
      });
      const r = (await Promise.race([ping, failed])) as { version: string };
      this.version = r.version;
      answered = true;
    } finally {
      clearTimeout(timer);
    }
    if (this.generation > 1) this.o.onRestart?.();
  }

  private onLine(line: string): void {
    let m: { id?: number; ok?: boolean; result?: unknown; error?: string } & Partial<EngineEvent>;
    try {
      m = JSON.parse(line) as typeof m;
    } catch {
      return;
    }
    if (typeof m.id === 'number') {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (!p) return;
      if (m.ok) p.resolve(m.result);
      else p.reject(new PkgError('io', `engine: ${m.error ?? 'failed'}`));
      return;
    }
    if (m.event) this.o.onEvent?.(m as EngineEvent);
  }

  /** `raw`: bytes sent as they are after the request line, which says their size (the engine reads them before the next line). */
  private rawCall(op: string, params: Record<string, unknown>, raw?: Buffer): Promise<unknown> {
    const child = this.child;
    if (!child?.stdin) return Promise.reject(new PkgError('io', 'engine not running'));
    const id = ++this.id;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      child.stdin!.write(JSON.stringify(raw ? { id, op, ...params, size: raw.length } : { id, op, ...params }) + '\n');
      if (raw) child.stdin!.write(raw);
    });
  }

  /** One request; fails (never hangs past 10 s) while the engine is down or restarting. */
  async call<T>(op: string, params: Record<string, unknown> = {}, raw?: Buffer): Promise<T> {
    if (this.closing) throw new PkgError('io', 'engine stopped');
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new PkgError('io', `engine ${op}: no answer in 10 s`)), 10_000);
    });
    try {
      return (await Promise.race([this.rawCall(op, params, raw), timeout])) as T;
    } finally {
      clearTimeout(timer);
    }
  }

  async add(a: AddOptions): Promise<string> {
    const r = await this.call<{ ih: string }>('add', {
      torrent: a.torrent.toString('base64'),
      save_path: a.savePath,
      seed: a.seed ?? false,
      ...(a.trackers ? { trackers: a.trackers } : {}),
    });
    return r.ih;
  }

  async remove(ih: string): Promise<void> {
    await this.call('remove', { ih }).catch(() => undefined);
  }

  async status(ih: string, detail = false): Promise<BtStatus> {
    const r = await this.call<Record<string, unknown>>('status', { ih, detail });
    const text = (v: unknown) => (typeof v === 'string' ? v : '');
    return {
      state: String(r.state),
      seeding: r.seeding === true,
      have: Buffer.from(text(r.have), 'base64'),
      numHave: Number(r.num_have),
      peers: Number(r.peers),
      seeds: Number(r.seeds),
      downloaded: Number(r.downloaded),
      uploaded: Number(r.uploaded),
      downloadRate: Number(r.download_rate),
      uploadRate: Number(r.upload_rate),
      error: text(r.error),
      byIp: (r.by_ip as Record<string, number>) ?? {},
      fromOrigin: Number(r.from_origin ?? 0),
      trackerPeers: typeof r.tracker_peers === 'number' ? r.tracker_peers : null,
      ...(r.available !== undefined ? { available: Buffer.from(text(r.available), 'base64') } : {}),
      ...(r.downloading !== undefined ? { downloading: r.downloading as number[] } : {}),
    };
  }

  async list(): Promise<BtListEntry[]> {
    const r = await this.call<Array<Record<string, unknown>>>('list');
    return r.map((e) => ({ ih: String(e.ih), uploaded: Number(e.uploaded), peers: Number(e.peers), seeding: e.seeding === true, uploadRate: Number(e.upload_rate) }));
  }

  /** Pieces the caller fetches itself: the engine asks no peer for them until added or released. */
  async reserve(ih: string, pieces: number[]): Promise<void> {
    await this.call('reserve', { ih, pieces });
  }

  async release(ih: string, pieces: number[]): Promise<void> {
    await this.call('release', { ih, pieces });
  }

  /** Hands the engine a piece fetched elsewhere (it checks the hash, writes it and offers it to peers); false: it had it already. */
  async addPiece(ih: string, piece: number, data: Buffer): Promise<boolean> {
    // The buffer is the caller's for good (fetchPieces allocates each piece): the pipe may write it later.
    return (await this.call<{ added: boolean }>('add_piece', { ih, piece }, data)).added;
  }

  async connect(ih: string, ip: string, port: number): Promise<void> {
    await this.call('connect', { ih, ip, port });
  }

  session(): Promise<{ uploaded: number; downloaded: number; torrents: number; peers: number; listen_port: number; version: string }> {
    return this.call('session');
  }

  /** libtorrent's own values of these settings (settings_pack names). */
  settings(names: string[]): Promise<Record<string, unknown>> {
    return this.call('settings', { names });
  }

  async close(): Promise<void> {
    this.closing = true;
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    // Closing stdin is the engine's signal to stop; SIGTERM if it lingers.
    child.stdin?.end();
    const term = setTimeout(() => child.kill('SIGTERM'), 3000);
    const kill = setTimeout(() => child.kill('SIGKILL'), 6000);
    await exited;
    clearTimeout(term);
    clearTimeout(kill);
  }
}

function lastLine(s: string): string {
  return s.trim().split('\n').pop() ?? '';
}

/** Whether piece `i` is set in a bitfield (highest bit of byte 0 = piece 0). */
export function hasPiece(bits: Buffer, i: number): boolean {
  return ((bits[i >> 3] ?? 0) & (0x80 >> (i & 7))) !== 0;
}
