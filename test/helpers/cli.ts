// Runs the CLI in-process (fast, output captured) or as the real binary (exit
// codes, signals, what a user sees).
import { PassThrough } from 'node:stream';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { run } from '../../src/cli/main.js';

export const BIN = fileURLToPath(new URL('../../bin/pkgtorrent', import.meta.url));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout as bytes, for torrents written to `-`. */
  stdoutBytes: Buffer;
}

function capture(isTTY = false) {
  const s = new PassThrough() as PassThrough & { isTTY?: boolean };
  s.isTTY = isTTY;
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  return { stream: s, bytes: () => Buffer.concat(chunks) };
}

/**
 * In-process run with injected args, cwd and variables. No config file is
 * read unless one is passed, so the machine's /etc does not leak into tests.
 */
export async function cli(argv: string[], opts: { cwd?: string; vars?: Record<string, string | undefined>; tty?: boolean } = {}): Promise<CliResult> {
  const out = capture(opts.tty);
  const err = capture(opts.tty);
  const code = await run({
    argv,
    cwd: opts.cwd ?? process.cwd(),
    vars: { HOME: process.env.HOME, ...opts.vars },
    stdout: out.stream,
    stderr: err.stream,
    defaultConfigFile: '/nonexistent/pkgtorrent.conf',
  });
  const stdoutBytes = out.bytes();
  return { code, stdout: stdoutBytes.toString(), stderr: err.bytes().toString(), stdoutBytes };
}

/**
 * The command line that runs a node script outside tap's instrumentation.
 * tap wraps child_process to put its loaders into NODE_OPTIONS of every
 * child; those break the extensionless ESM launcher, and the binary is meant
 * to run the compiled build as a user would. `env -u` drops them.
 */
export function nodeCommand(script: string, args: string[]): [string, string[]] {
  return ['/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, script, ...args]];
}

/**
 * Root reads and removes anything, so a test of "permission denied" would
 * pass nothing. Under root the command runs without the capabilities that
 * override file permissions (still uid 0, so it can read the checkout
 * wherever CI cloned it, unlike running as nobody).
 */
export function asIfNotRoot(cmd: string, args: string[]): [string, string[]] {
  if (process.getuid?.() !== 0) return [cmd, args];
  return ['setpriv', ['--bounding-set', '-dac_override,-dac_read_search', '--', cmd, ...args]];
}

/** Runs bin/pkgtorrent (the compiled build) as a child process. */
export function bin(
  argv: string[],
  opts: { cwd?: string; env?: Record<string, string | undefined>; timeoutMs?: number; permissionsApply?: boolean } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const [cmd, args] = opts.permissionsApply ? asIfNotRoot(...nodeCommand(BIN, argv)) : nodeCommand(BIN, argv);
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: { ...process.env, PKGTORRENT_CONFIG: '', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: opts.timeoutMs ?? 60_000,
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) => {
      const stdoutBytes = Buffer.concat(out);
      resolve({ code: code ?? -1, stdout: stdoutBytes.toString(), stderr: Buffer.concat(err).toString(), stdoutBytes });
    });
  });
}
