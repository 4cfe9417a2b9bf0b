// A real `pkgtorrent serve` child process (the compiled build, as users run
// it) on 127.0.0.1 with a free port, plus a raw HTTP client that sends paths
// exactly as given (fetch would normalise `..` and percent-encoding away).
// Run `npm run build` first; the test script does.
import { createHash } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { run } from '../../src/cli/main.js';
import { existsSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';
import { BIN, asIfNotRoot, nodeCommand } from './cli.js';

const DIST_SERVE = fileURLToPath(new URL('../../dist/commands/serve.js', import.meta.url));

export interface ServeOptions {
  root: string;
  cacheDir: string;
  /** Trackers file; default: a path that does not exist (no trackers). */
  trackers?: string;
  /** Pass --files (serve the mirror's files too). */
  files?: boolean;
  /** Default 16K, so small test files still make several pieces and padding. */
  pieceLength?: string;
  /** Any further arguments, e.g. ['--trackers-interval', '0.2s', '--workers', '2']. */
  args?: string[];
  /** File permissions apply even when the tests run as root (see asIfNotRoot). */
  permissionsApply?: boolean;
  /**
   * Run the whole serve command in this process through its injected
   * environment (argv, streams, an abort signal for SIGTERM) rather than as a
   * child: faster, and its code counts in coverage. Signals, --workers and
   * process-wide measures need the child.
   */
  inProcess?: boolean;
}

export interface ServeProcess {
  /** "http://127.0.0.1:PORT", without a trailing slash. */
  url: string;
  /** The serve process (for /proc). */
  pid: number;
  /** Everything written to stderr so far (startup line, access log, build lines). */
  stderr(): string;
  /** Resolves once stderr matches, or rejects after timeoutMs. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<void>;
  /** SIGTERM (or the given signal) and wait for exit; SIGKILL after timeoutMs. Idempotent. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Starts `serve --host 127.0.0.1 --port 0` and waits for its
 * "pkgtorrent: serving http://..." line. With `t`, the server is stopped in
 * t.teardown, whatever the test does.
 */
export async function startServe(t: Test | null, o: ServeOptions): Promise<ServeProcess> {
  if (!existsSync(DIST_SERVE)) throw new Error('dist/ has no serve command: run `npm run build` first');
  const argv = serveArgv(o);
  if (o.inProcess) return startInProcess(t, argv);
  const command = nodeCommand(BIN, argv);
  const child = spawn(...(o.permissionsApply ? asIfNotRoot(...command) : command), {
    env: { ...process.env, PKGTORRENT_CONFIG: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return childServe(t, child);
}

function serveArgv(o: ServeOptions): string[] {
  return [
    'serve',
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--root',
    o.root,
    '--cache-dir',
    o.cacheDir,
    '--trackers',
    o.trackers ?? `${o.cacheDir}/no-trackers-file`,
    '--piece-length',
    o.pieceLength ?? '16K',
    ...(o.files ? ['--files'] : []),
    ...(o.args ?? []),
  ];
}

/** serve's stderr as it arrives, and waits for a line in it that end when serve does. */
class StderrWatch {
  private text = '';
  private ended = false;
  private waiters = new Set<() => void>();

  add(s: string): void {
    this.text += s;
    for (const w of this.waiters) w();
  }

  end(): void {
    this.ended = true;
    for (const w of this.waiters) w();
  }

  all = (): string => this.text;

  waitFor = (re: RegExp, timeoutMs = 10_000): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (re.test(this.text)) done(null);
        else if (this.ended) done(new Error(`serve ended before ${re}: ${this.text}`));
      };
      const timer = setTimeout(() => done(new Error(`timed out waiting for ${re} in serve's stderr:\n${this.text}`)), timeoutMs);
      const done = (e: Error | null) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        if (e) reject(e);
        else resolve();
      };
      this.waiters.add(check);
      check();
    });
}

type Stop = ServeProcess['stop'];

/** Waits for "pkgtorrent: serving URL", stopping serve if it never comes; stops it at the end of `t`. */
async function serving(t: Test | null, watch: StderrWatch, pid: number, stop: Stop): Promise<ServeProcess> {
  t?.teardown(() => stop().then(() => undefined));
  // The text line, or the same message in a JSON object (--log-format json).
  const line = /(?:pkgtorrent: |"msg":")serving (http:\/\/[^\s"]+?)\/? /;
  try {
    await watch.waitFor(line, 20_000);
  } catch (e) {
    await stop();
    throw e;
  }
  return { url: line.exec(watch.all())![1]!, pid, stderr: watch.all, waitFor: watch.waitFor, stop };
}

/** serve run in-process by the CLI's own entry point, with an injected environment. */
function startInProcess(t: Test | null, argv: string[]): Promise<ServeProcess> {
  const abort = new AbortController();
  const watch = new StderrWatch();
  const stderr = new PassThrough();
  stderr.setEncoding('utf8').on('data', (s: string) => watch.add(s));
  const exited = run({
    argv,
    cwd: process.cwd(),
    vars: { HOME: process.env.HOME },
    stdout: new PassThrough().resume(),
    stderr,
    signal: abort.signal,
    defaultConfigFile: '/nonexistent/pkgtorrent.conf',
  }).then((code) => {
    watch.end();
    return { code, signal: null };
  });
  return serving(t, watch, process.pid, () => {
    abort.abort();
    return exited;
  });
}

/** The child's side: stderr collected, stop by signal, SIGKILL if it will not go. */
function childServe(t: Test | null, child: ChildProcess): Promise<ServeProcess> {
  const watch = new StderrWatch();
  child.stderr!.setEncoding('utf8').on('data', (s: string) => watch.add(s));
  child.stdout!.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      resolve({ code, signal });
      watch.end();
    }),
  );
  let stopping: ReturnType<Stop> | null = null;
  const stop: Stop = (signal = 'SIGTERM', timeoutMs = 15_000) =>
    (stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        const r = await exited;
        clearTimeout(timer);
        return r;
      }
      return exited;
    })());
  return serving(t, watch, child.pid!, stop);
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/**
 * One HTTP request with the path sent byte for byte as given. A fresh
 * connection each time (agent: false), so concurrent requests really are.
 */
export function request(
  base: string,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer; timeoutMs?: number } = {},
): Promise<HttpResponse> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: u.hostname, port: u.port, path, method: opts.method ?? 'GET', headers: opts.headers, agent: false, timeout: opts.timeoutMs ?? 30_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${opts.method ?? 'GET'} ${path}: timed out`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** The digest yum-torrent sends for a list of paths: SHA-1 of them joined by newlines, hex. */
export function digestOf(paths: readonly string[]): string {
  return createHash('sha1').update(paths.join('\n')).digest('hex');
}

/** The body yum-torrent sends: one urlencoded `p` field per path, in order. */
function pathForm(paths: readonly string[]): string {
  return paths.map((p) => `p=${encodeURIComponent(p).replace(/%20/g, '+')}`).join('&');
}

/** POSTs paths to the digest URL of those paths (the client's side of the conversation). */
export function postPaths(base: string, prefix: string, paths: readonly string[], digest: string): Promise<HttpResponse> {
  return request(base, `/${prefix}/torrent_service/digest/${digest}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: pathForm(paths),
  });
}
