// Parallel SHA-1 piece hashing on worker threads. This module knows about byte
// streams and pieces only: which files form a torrent, and how hashes are
// cached, is decided by the callers (piece-cache.ts, file-pieces.ts, make).
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { PkgError, fsError } from './errors.js';
import { blockBuffer, runTask } from './hash-run.js';
import type { HashTask, Segment, TaskReply, WorkerMessage } from './hash-task.js';

export type { Segment } from './hash-task.js';

// A task is the unit handed to one worker. Large enough that messaging costs
// nothing, small enough that one big file still keeps every core busy and
// that the last tasks of a run end close together (a 64 MiB task left one
// core idle for up to 40 ms at the end of a make).
const TASK_BYTES = 16 * 1024 * 1024;
/**
 * Small tasks (a package of a few KiB, hashed padded to a piece) go to a
 * worker several to a message, up to this much hashing work, so that the
 * message round trip is paid once per batch and the worker has the next
 * task at hand while this thread is busy.
 */
const BATCH_WORK = 4 * 1024 * 1024;
const BATCH_MAX = 32;

export interface StreamHashes {
  /** SHA-1 of every piece, the last one as it is (possibly short). */
  pieces: Buffer;
  /** SHA-1 of a short last piece padded with zeros, when asked for and there is one. */
  paddedTail: Buffer | null;
}

interface Job {
  task: HashTask;
  onProgress: ((bytes: number) => void) | undefined;
  resolve: (r: { pieces: Uint8Array; paddedTail: Uint8Array | null }) => void;
  reject: (e: Error) => void;
}

// Running under the TypeScript loader (tests), the worker is the .ts source.
const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './hash-worker.ts' : './hash-worker.js', import.meta.url);

export function defaultJobs(): number {
  return availableParallelism();
}

export interface HashPoolOptions {
  /**
   * The calling thread is one of the `jobs` hashers, between turns of its
   * event loop, and one worker fewer is started. For commands whose main
   * thread would only wait (make, hash): hashing starts at once instead of
   * after a worker's start-up (tens of milliseconds), and that start-up's
   * CPU is saved. Never for serve: a task holds the loop for about 10 ms.
   */
  inline?: boolean;
}

/**
 * Up to `jobs` hashers (worker threads, plus this thread with `inline`) fed
 * from one FIFO queue of tasks. Workers start when there is work for them;
 * idle ones are unref'd so a pool never keeps a finished process alive, and
 * `close()` ends them.
 */
export class HashPool {
  readonly size: number;
  /** Every worker with the jobs sent to it, oldest (the one it is hashing) first. */
  private workers = new Map<Worker, Job[]>();
  /** Messages (single tasks or batches) each worker has not answered yet. */
  private batches = new Map<Worker, number>();
  private queue: Job[] = [];
  private nextId = 1;
  /** Set by close(): what every later or unfinished job fails with. */
  private closed: PkgError | null = null;
  /** The inline lane: absent when the pool has none, else its scratch buffer and whether it is hashing. */
  private inline: { busy: boolean; buffer: Buffer | null } | null;

  constructor(jobs = defaultJobs(), opts: HashPoolOptions = {}) {
    if (!Number.isInteger(jobs) || jobs < 1) throw new PkgError('usage', `invalid number of jobs '${jobs}'`);
    this.size = jobs;
    this.inline = opts.inline ? { busy: false, buffer: null } : null;
  }

  /** Most worker threads: the inline lane counts as one of the jobs. */
  private get maxWorkers(): number {
    return this.inline ? this.size - 1 : this.size;
  }

  /** Not closed: jobs are still taken (serve's /-/ready). */
  get alive(): boolean {
    return this.closed === null;
  }

  /** Tasks waiting for a worker (not counting those being hashed). */
  get pending(): number {
    return this.queue.length;
  }

  /** Hashes one contiguous stream that starts on a piece boundary. */
  hashStream(
    segments: Segment[],
    pieceLength: number,
    opts: { padTail?: boolean; onProgress?: (bytes: number) => void; within?: string } = {},
  ): Promise<StreamHashes> {
    const tasks = splitStream(segments, pieceLength);
    const results = tasks.map((segs, i) =>
      this.run(
        { id: this.nextId++, pieceLength, segments: segs, padTail: (opts.padTail ?? false) && i === tasks.length - 1, within: opts.within },
        opts.onProgress,
      ),
    );
    return Promise.all(results).then((parts) => ({
      pieces: Buffer.concat(parts.map((p) => p.pieces)),
      paddedTail: parts.length && parts[parts.length - 1]!.paddedTail ? Buffer.from(parts[parts.length - 1]!.paddedTail!) : null,
    }));
  }

  private run(task: HashTask, onProgress?: (bytes: number) => void) {
    if (this.closed) return Promise.reject(this.closed);
    return new Promise<{ pieces: Uint8Array; paddedTail: Uint8Array | null }>((resolve, reject) => {
      this.queue.push({ task, onProgress, resolve, reject });
      this.dispatch();
    });
  }

  /**
   * Hands out queued tasks: to idle workers, then to the inline lane, then to
   * new workers up to the limit, then a second task to each busy worker.
   * That second task waits in the worker's message queue, so the worker goes
   * on to it at once even while this thread is busy, as it is when it hashes
   * inline; without it a worker idled for up to a task's time (about 10 ms)
   * after each task. A single task never starts a worker when this thread
   * can take it.
   */
  private dispatch(): void {
    this.sendTo(0);
    this.dispatchInline();
    while (this.queue.length) {
      const worker = this.spawn();
      if (!worker) break;
      this.send(worker);
    }
    this.sendTo(1);
  }

  /** Sends queued tasks to the workers that have `load` messages in flight. */
  private sendTo(load: number): void {
    for (const worker of this.workers.keys()) {
      if (!this.queue.length) return;
      if ((this.batches.get(worker) ?? 0) === load) this.send(worker);
    }
  }

  /** Sends the next task, or a batch of small ones, as one message. */
  private send(worker: Worker): void {
    const jobs = this.workers.get(worker)!;
    const batch: HashTask[] = [];
    let work = 0;
    do {
      const job = this.queue.shift()!;
      jobs.push(job);
      batch.push(job.task);
      work += taskWork(job.task);
      // Leave the inline lane a task of its own when it is idle.
    } while (this.queue.length > (this.inline && !this.inline.busy ? 1 : 0) && work < BATCH_WORK && batch.length < BATCH_MAX);
    this.batches.set(worker, (this.batches.get(worker) ?? 0) + 1);
    worker.ref();
    worker.postMessage(batch.length === 1 ? batch[0] : batch);
  }

  /**
   * Hashes the next queued task on this thread, from setImmediate so that
   * worker messages and timers (the progress bar) run between tasks.
   */
  private dispatchInline(): void {
    const lane = this.inline;
    if (!lane || lane.busy || !this.queue.length) return;
    const job = this.queue.shift()!;
    lane.busy = true;
    setImmediate(() => {
      lane.buffer = blockBuffer(lane.buffer, job.task.pieceLength);
      const reply = runTask(job.task, lane.buffer, (bytes) => job.onProgress?.(bytes));
      lane.busy = false;
      settle(job, reply);
      if (!this.closed) this.dispatch();
    });
  }

  private spawn(): Worker | null {
    if (this.workers.size >= this.maxWorkers) return null;
    const worker = new Worker(WORKER_URL);
    // Idle workers never keep the process alive; one with jobs does.
    worker.unref();
    this.workers.set(worker, []);
    worker.on('message', (msg: WorkerMessage) => this.onMessage(worker, msg));
    worker.on('error', (err) => this.onExit(worker, err));
    worker.on('exit', (code) => this.onExit(worker, new Error(`hash worker exited with code ${code}`)));
    return worker;
  }

  private onMessage(worker: Worker, msg: WorkerMessage): void {
    const jobs = this.workers.get(worker);
    if (!jobs) return;
    if (!Array.isArray(msg) && msg.type === 'progress') {
      // Tasks of a batch run in order, but are answered together: the one
      // reporting progress need not be the first still listed.
      jobs.find((j) => j.task.id === msg.id)?.onProgress?.(msg.bytes);
      return;
    }
    const replies = Array.isArray(msg) ? msg : [msg];
    for (const reply of replies) {
      const job = jobs[0];
      if (!job || job.task.id !== reply.id) return;
      jobs.shift();
      settle(job, reply);
    }
    this.batches.set(worker, (this.batches.get(worker) ?? 1) - 1);
    if (!jobs.length) worker.unref();
    this.dispatch();
  }

  // A worker that dies fails its jobs and is replaced on demand.
  private onExit(worker: Worker, err: Error): void {
    const jobs = this.workers.get(worker);
    if (!jobs) return;
    this.workers.delete(worker);
    this.batches.delete(worker);
    for (const job of jobs) job.reject(err);
    if (!this.closed) this.dispatch();
  }

  /**
   * Ends the workers. Every job not done fails with `reason`, those being
   * hashed too: a caller waiting for one (a torrent build holding its lock)
   * must hear of it rather than wait forever. A typed error, because
   * stopping under load is normal: serve answers it as a 503 "try again".
   */
  async close(reason = new PkgError('busy', 'hashing was stopped')): Promise<void> {
    this.closed ??= reason;
    const workers = [...this.workers];
    this.workers.clear();
    this.batches.clear();
    for (const job of [...this.queue.splice(0), ...workers.flatMap(([, jobs]) => jobs)]) job.reject(this.closed);
    await Promise.all(workers.map(([w]) => w.terminate()));
  }
}

/** The bytes a task hashes: a padded tail counts as the whole piece it is hashed as. */
function taskWork(task: HashTask): number {
  const len = task.segments.reduce((s, x) => s + x.length, 0);
  return task.padTail ? Math.ceil(len / task.pieceLength) * task.pieceLength : len;
}

/** Ends a job with a task's final reply, from a worker or the inline lane. */
function settle(job: Job, reply: TaskReply): void {
  if (reply.type === 'done') job.resolve({ pieces: reply.pieces, paddedTail: reply.paddedTail });
  else if (reply.code === 'changed') job.reject(new PkgError('changed', `${reply.path}: changed while it was hashed (${reply.message})`));
  else job.reject(fsError(Object.assign(new Error(reply.message), { code: reply.errno }), reply.path));
}

/** Cuts a stream into tasks of about TASK_BYTES, each starting on a piece boundary. */
export function splitStream(segments: Segment[], pieceLength: number, taskBytes = TASK_BYTES): Segment[][] {
  const per = Math.max(1, Math.floor(taskBytes / pieceLength)) * pieceLength;
  const tasks: Segment[][] = [];
  let current: Segment[] = [];
  let room = per;
  for (const seg of segments) {
    let offset = seg.offset;
    let left = seg.length;
    while (left > 0) {
      const take = Math.min(left, room);
      // A whole segment (a small file) goes in as it is: no copy per file.
      current.push(take === seg.length ? seg : { ...seg, offset, length: take });
      offset += take;
      left -= take;
      room -= take;
      if (room === 0) {
        tasks.push(current);
        current = [];
        room = per;
      }
    }
  }
  if (current.length) tasks.push(current);
  return tasks;
}
