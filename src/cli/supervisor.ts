// The cluster of `serve --workers N`: the primary that forks and stops the
// workers, and the worker's side of the stop protocol. node:cluster and the
// worker's IPC channel come in through the interfaces below, so the races of
// start-up and stop run in-process in tests with a fake cluster.
//
// The protocol: a worker sends READY once it listens for STOP; the primary
// sends STOP to every worker that is ready when the stop begins, and to each
// one that becomes ready later. A message sent before a worker listens would
// be lost (IPC drops messages nobody listens for), which used to leave a
// worker that was still starting running forever. Whatever does not stop
// within the grace period is killed.
import cluster, { type Worker } from 'node:cluster';
import { PkgError } from '../core/errors.js';

export const STOP_MESSAGE = 'pkgtorrent:stop';
export const READY_MESSAGE = 'pkgtorrent:ready';

/**
 * How long workers get to stop before they are killed: a worker gives
 * requests in flight 10 s (RunningServer.close), then ends its hashing.
 */
export const STOP_GRACE_MS = 15_000;

export interface ListenAddress {
  address: string;
  port: number;
  /** 4, 6, or another transport (cluster's own field). */
  addressType: number | string;
}

/** What the primary hears from one worker. */
export interface WorkerEvents {
  message(message: unknown): void;
  listening(address: ListenAddress): void;
  exit(code: number | null, signal: string | null): void;
}

/** A forked worker process, as the primary drives it. */
export interface WorkerProcess {
  readonly pid: number | undefined;
  /** Sends a message over IPC; nothing happens once the channel is gone. */
  send(message: string): void;
  /** Ends the process at once. */
  kill(): void;
}

/** The primary's side of the cluster. */
export interface ClusterPrimary {
  fork(events: WorkerEvents): WorkerProcess;
}

/** A worker's channel to its primary. */
export interface PrimaryLink {
  onMessage(fn: (message: unknown) => void): void;
  send(message: string): void;
  /** Closes the channel, so the process exits once its own work is done. */
  disconnect(): void;
}

/** The cluster as serve sees it. */
export interface ClusterEnv {
  /** This process's link to its primary when it is a cluster worker, else null. */
  readonly link: PrimaryLink | null;
  /** Becomes a primary whose workers run `exec` with `args` and the variables `vars`. */
  primary(exec: string, args: string[], vars: Record<string, string>): ClusterPrimary;
}

export interface SuperviseOptions {
  cluster: ClusterPrimary;
  workers: number;
  /** Aborted on SIGINT/SIGTERM: the workers are asked to stop. */
  signal: AbortSignal | undefined;
  /** Operator lines, one each. */
  log(line: string): void;
  /** Once, when the first worker listens. */
  onListening(address: ListenAddress): void;
  graceMs?: number;
  /** Runs fn after ms, returns a cancel; setTimeout unless a test brings its clock. */
  after?: (ms: number, fn: () => void) => () => void;
}

const realAfter = (ms: number, fn: () => void) => {
  const timer = setTimeout(fn, ms);
  return () => clearTimeout(timer);
};

/**
 * Forks the workers, replaces one that dies, and on the signal stops them
 * all: resolves once none is left. A worker that exits non-zero before it
 * was ready is a start-up failure (its own error line is already on stderr,
 * e.g. the port is in use): the others are stopped and this rejects,
 * instead of forking the same failure forever.
 */
export function supervise(o: SuperviseOptions): Promise<void> {
  const graceMs = o.graceMs ?? STOP_GRACE_MS;
  const after = o.after ?? realAfter;
  return new Promise<void>((resolve, reject) => {
    if (o.signal?.aborted) return resolve();
    const live = new Map<WorkerProcess, { ready: boolean }>();
    let announced = false;
    let stopping = false;
    let failure: PkgError | null = null;
    let cancelKill: (() => void) | null = null;

    const finish = () => {
      cancelKill?.();
      o.signal?.removeEventListener('abort', stop);
      if (failure) reject(failure);
      else resolve();
    };

    function stop(): void {
      if (stopping) return;
      stopping = true;
      for (const [w, state] of live) if (state.ready) w.send(STOP_MESSAGE);
      if (!live.size) return finish();
      cancelKill = after(graceMs, () => {
        for (const w of live.keys()) {
          o.log(`worker ${w.pid} did not stop within ${graceMs / 1000} s: killing it`);
          w.kill();
        }
      });
    }

    const fork = () => {
      const state = { ready: false };
      const worker: WorkerProcess = o.cluster.fork({
        message(m) {
          if (m !== READY_MESSAGE || state.ready) return;
          state.ready = true;
          // A stop asked for while this worker was starting.
          if (stopping) worker.send(STOP_MESSAGE);
        },
        listening(address) {
          if (announced) return;
          announced = true;
          o.onListening(address);
        },
        exit(code, sig) {
          if (!live.delete(worker)) return;
          const how = sig ?? `exit ${code}`;
          // Only an exit status tells of a failed start: a signal may be the
          // one the whole process group got (systemd, Ctrl-C), and is then
          // on its way to this process too.
          if (!stopping && !state.ready && code !== null && code !== 0) {
            failure = new PkgError('io', `worker ${worker.pid} failed to start (${how}): stopping`);
            stop();
          } else if (!stopping) {
            o.log(`worker ${worker.pid} exited (${how}); starting another`);
            fork();
          }
          if (stopping && !live.size) finish();
        },
      });
      live.set(worker, state);
    };

    o.signal?.addEventListener('abort', stop, { once: true });
    for (let i = 0; i < o.workers; i++) fork();
  });
}

/**
 * Resolves once this process should stop: its own signal, or, in a cluster
 * worker, the primary's STOP. READY goes out only after the listener is in
 * place, so the primary never sends STOP into the void.
 */
export function stopRequested(signal: AbortSignal | undefined, link: PrimaryLink | null): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    signal?.addEventListener('abort', () => resolve(), { once: true });
    if (!link) return;
    link.onMessage((m) => m === STOP_MESSAGE && resolve());
    link.send(READY_MESSAGE);
  });
}

/** node:cluster behind ClusterEnv. */
export const nodeCluster: ClusterEnv = {
  link: cluster.isWorker
    ? {
        onMessage: (fn) => void process.on('message', fn),
        send: (m) => void process.send?.(m),
        // cluster's own disconnect: a bare process.disconnect() makes the
        // worker exit at once, before files being written are closed.
        disconnect: () => void cluster.worker?.disconnect(),
      }
    : null,
  primary(exec, args, vars) {
    cluster.setupPrimary({ exec, args, silent: false });
    return {
      fork(events) {
        const w: Worker = cluster.fork(vars);
        w.on('message', (m: unknown) => events.message(m));
        w.on('listening', (a) => events.listening(a));
        w.on('exit', (code: number | null, sig: string | null) => events.exit(code, sig));
        return {
          pid: w.process.pid,
          // The callback takes a send error (the worker just died) instead of an 'error' event.
          send: (m) => void (w.isConnected() && w.send(m, () => {})),
          kill: () => void w.process.kill('SIGKILL'),
        };
      },
    };
  },
};
