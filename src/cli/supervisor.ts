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
//
// The primary also asks its ready workers questions (ASK, answered by
// REPLY with the same id): serve's metrics listener runs in the primary and
// asks each worker for its metrics and its readiness. Only ready workers
// are asked, for the same reason as STOP: one still starting could not hear.
import cluster, { type Worker } from 'node:cluster';
import { PkgError } from '../core/errors.js';

export const STOP_MESSAGE = 'pkgtorrent:stop';
export const READY_MESSAGE = 'pkgtorrent:ready';
export const ASK_MESSAGE = 'pkgtorrent:ask';
export const REPLY_MESSAGE = 'pkgtorrent:reply';

/** Primary to worker: answer `what` (one of the worker's answerAsks keys). */
export interface AskMessage {
  type: typeof ASK_MESSAGE;
  id: number;
  what: string;
}

/** Worker to primary: the answer to the ask `id`, or why there is none. */
export interface ReplyMessage {
  type: typeof REPLY_MESSAGE;
  id: number;
  answer?: unknown;
  error?: string;
}

/** How long the primary waits for every ready worker's answer. */
export const ASK_TIMEOUT_MS = 5000;

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
  send(message: string | AskMessage): void;
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
  send(message: string | ReplyMessage): void;
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

/** One worker's answer to an ask. */
export interface WorkerAnswer {
  pid: number | undefined;
  answer: unknown;
}

/** The running workers, as the primary's metrics listener sees them. */
export interface Workers {
  /** Workers that are ready (listening, and hearing the primary). */
  readyCount(): number;
  /**
   * Asks every ready worker `what`: resolves with their answers (in fork
   * order) once each answered or exited; rejects when one answers an error
   * or when they have not all answered within ASK_TIMEOUT_MS.
   */
  ask(what: string): Promise<WorkerAnswer[]>;
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
  /** Called at once with the handle the primary asks its workers through. */
  onWorkers?(workers: Workers): void;
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
    const asks = new Map<number, Ask>();
    let nextAsk = 0;
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
          if (isReply(m)) return asks.get(m.id)?.reply(worker, m);
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
          for (const ask of asks.values()) ask.gone(worker);
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

    o.onWorkers?.({
      readyCount: () => [...live.values()].filter((w) => w.ready).length,
      ask: (what) =>
        new Promise<WorkerAnswer[]>((resolve, reject) => {
          const id = nextAsk++;
          const asked = [...live].filter(([, w]) => w.ready).map(([w]) => w);
          const answers = new Map<WorkerProcess, unknown>();
          const waiting = new Set(asked);
          const end = (err: Error | null) => {
            if (!asks.delete(id)) return;
            cancel();
            if (err) return reject(err);
            resolve(asked.filter((w) => answers.has(w)).map((w) => ({ pid: w.pid, answer: answers.get(w) })));
          };
          const check = () => waiting.size === 0 && end(null);
          asks.set(id, {
            reply(w, m) {
              if (!waiting.delete(w)) return;
              if (m.error !== undefined) return end(new Error(`worker ${w.pid}: ${m.error}`));
              answers.set(w, m.answer);
              check();
            },
            gone(w) {
              waiting.delete(w);
              check();
            },
          });
          const cancel = after(ASK_TIMEOUT_MS, () => end(new Error(`no answer from worker ${[...waiting].map((w) => w.pid).join(', ')} within ${ASK_TIMEOUT_MS / 1000} s`)));
          for (const w of asked) w.send({ type: ASK_MESSAGE, id, what });
          check();
        }),
    });
    o.signal?.addEventListener('abort', stop, { once: true });
    for (let i = 0; i < o.workers; i++) fork();
  });
}

/** An ask the primary waits on. */
interface Ask {
  reply(worker: WorkerProcess, m: ReplyMessage): void;
  gone(worker: WorkerProcess): void;
}

function isReply(m: unknown): m is ReplyMessage {
  return typeof m === 'object' && m !== null && (m as ReplyMessage).type === REPLY_MESSAGE && typeof (m as ReplyMessage).id === 'number';
}

/**
 * The worker's side of the asks: answers each with the function of its
 * name (an error it throws is sent as the reply's error). Asks for a name
 * not in `answers` are left to other listeners.
 */
export function answerAsks(link: PrimaryLink, answers: Record<string, () => Promise<unknown>>): void {
  link.onMessage((m) => {
    const ask = m as AskMessage;
    if (typeof m !== 'object' || m === null || ask.type !== ASK_MESSAGE || !Object.hasOwn(answers, ask.what)) return;
    answers[ask.what]!().then(
      (answer) => link.send({ type: REPLY_MESSAGE, id: ask.id, answer }),
      (err: unknown) => link.send({ type: REPLY_MESSAGE, id: ask.id, error: err instanceof Error ? err.message : String(err) }),
    );
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
