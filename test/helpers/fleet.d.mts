// Types of fleet.mjs (plain JavaScript, no build step), so TypeScript tests
// can import it under `strict`. Keep in step with the JSDoc there.
import type { ChildProcess } from 'node:child_process';

export interface Host {
  /** Network namespace name, for `ip netns exec`. */
  name: string;
  /** IPv4 address of its eth0. */
  ip: string;
  role: 'mirror' | 'client';
  /** 0 for the mirror, 1..n for the clients. */
  index: number;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the spawn's own timeout ended it. */
  timedOut: boolean;
}

export interface Handle {
  /** The `ip netns exec` process (it execs into `timeout`, then the command); leader of its process group. */
  proc: ChildProcess;
  /** stdout and stderr, interleaved. */
  logPath: string;
  exited: Promise<Exit>;
  /** Everything the command wrote so far. */
  output(): string;
  /** SIGTERM to the whole process group, SIGKILL after 5 s. */
  stop(): Promise<Exit>;
  /** Pid of the command itself, for signals meant for it alone (SIGHUP). */
  commandPid(): number | undefined;
  /** First output line matching `pattern`, or null on timeout or once the process exited without one. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<string | null>;
}

export interface SpawnOptions {
  /** Short label for the log file name. */
  name?: string;
  /** Replaces the environment (by default process.env without proxy variables). */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Hard limit; default: the fleet's lifetime. */
  timeoutMs?: number;
}

export interface ExecResult {
  /** null when it was killed (timeout). */
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface FleetOptions {
  clients: number;
  /** Rate of the mirror's eth0 egress (tbf), Mbit/s; 0 for no limit. */
  uplinkMbit: number;
  /** A few letters added to the namespace names. */
  tag?: string;
  /** Where logs go (the caller keeps it); default: a scratch dir that destroy() removes. */
  dir?: string;
  /** Hard limit on every spawned command, in case this process is SIGKILLed (default 3 h). */
  lifetimeS?: number;
}

export interface Fleet {
  /** Start of every namespace name, e.g. pkgt12345. */
  prefix: string;
  /** e.g. 10.201.45.0/24 */
  subnet: string;
  /** Scratch directory (logs under logs/). */
  dir: string;
  mirror: Host;
  clients: Host[];
  /** The mirror, then the clients. */
  hosts: Host[];
  spawn(host: Host, cmd: string, args: string[], opts?: SpawnOptions): Handle;
  exec(host: Host, cmd: string, args: string[], opts?: { timeoutMs?: number; env?: NodeJS.ProcessEnv }): Promise<ExecResult>;
  /** Bytes sent by the host's eth0 so far (link layer). */
  txBytes(host: Host): Promise<number>;
  /** Pids of the processes inside the host's namespace now. */
  pids(host: Host): number[];
  /** Stops every spawned process and deletes every namespace; idempotent. */
  destroy(): Promise<void>;
  /** The same at once, with SIGKILL (for exit handlers). */
  destroySync(): void;
  /** True once destroy() began (a signal may start it). */
  readonly closing: boolean;
}

export function canCreateFleet(): { ok: boolean; why: string };
export function createFleet(o: FleetOptions): Promise<Fleet>;

export interface FleetTracker {
  /** HTTP announce URL on the mirror, port 6969. */
  announce: string;
  /** opentracker's access.whitelist (absolute path). */
  whitelistPath: string;
  /** File holding the pid of opentracker itself. */
  pidFile: string;
  /** Pid of opentracker itself. */
  pid: number;
  handle: Handle;
  /** Whitelists info hashes (hex) and waits until announces for them are accepted. */
  allow(...infoHashesHex: string[]): Promise<void>;
  stop(): Promise<Exit>;
}

export function startTracker(fleet: Pick<Fleet, 'mirror' | 'dir' | 'spawn' | 'exec'>): Promise<FleetTracker>;

/** The query of a probe's HTTP announce (a fake peer on port 1) for an info hash. */
export function announceQuery(infoHashHex: string, event: string): string;

/** SHA-256 of a file, hex. */
export function sha256File(path: string): Promise<string>;
