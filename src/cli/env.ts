// The injected environment of a command (after intermodal's `Env`): a whole
// command runs in-process in a test with its own args, cwd, streams and
// variables, and its output is asserted.
import type { Readable, Writable } from 'node:stream';

export type OutStream = Writable & { isTTY?: boolean; columns?: number };

export interface Env {
  /** Arguments after the program name. */
  argv: string[];
  cwd: string;
  vars: Record<string, string | undefined>;
  stdout: OutStream;
  stderr: OutStream;
  /** Read by commands that take a list on stdin (fetch). */
  stdin?: Readable;
  /** Aborted on SIGINT/SIGTERM in the real process; long commands stop cleanly. */
  signal?: AbortSignal;
  /** Config file read when no --config or PKGTORRENT_CONFIG is given. */
  defaultConfigFile?: string;
}

export function processEnv(signal?: AbortSignal): Env {
  return {
    argv: process.argv.slice(2),
    cwd: process.cwd(),
    vars: process.env,
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    signal,
  };
}
