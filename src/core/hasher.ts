// Parallel SHA-1 piece hashing on worker threads. This module knows about byte
// streams and pieces only: which files form a torrent, and how hashes are
// cached, is decided by the callers (piece-cache.ts, file-pieces.ts, make).
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { PkgError, fsError } from './errors.js';
import type { HashTask, Segment, WorkerMessage } from './hash-task.js';

export type { Segment } from './hash-task.js';

export const HASH_LEN = 20;

// A task is the unit handed to one worker. Large enough that messaging costs
// nothing, small enough that one big file still keeps every core busy and
// that the last tasks of a run end close together (a 64 MiB task left one
// core idle for up to 40 ms at the end of a make).
const TASK_BYTES = 16 * 1024 * 1024;

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

/**
 * A fixed set of hash workers with a FIFO queue. Idle workers are unref'd so
 * a pool never keeps a finished process alive; `close()` ends them.
 */
export class HashPool {
  readonly size: number;
  private workers: Worker[] = [];
  private idle: Worker[] = [];
  private busy = new Map<Worker, Job>();
  private queue: Job[] = [];
  private nextId = 1;
  private closed = false;

  constructor(jobs = defaultJobs()) {
    if (!Number.isInteger(jobs) || jobs < 1) throw new PkgError('usage', `invalid number of jobs '${jobs}'`);
    this.size = jobs;
  }

  /** Tasks waiting for a worker (not counting those being hashed). */
  get pending(): number {
    return this.queue.length;
  }

  /**
   * Starts every worker now rather than on first use, so that their start-up
   * (tens of milliseconds each) overlaps whatever the caller does before it
   * hashes, such as listing a directory. Idle workers stay unref'd.
   */
  prestart(): void {
    if (this.closed) return;
    for (let w = this.spawn(); w; w = this.spawn()) {
      w.unref();
      this.idle.push(w);
    }
  }

  /** Hashes one contiguous stream that starts on a piece boundary. */
  hashStream(segments: Segment[], pieceLength: number, opts: { padTail?: boolean; onProgress?: (bytes: number) => void } = {}): Promise<StreamHashes> {
    const tasks = splitStream(segments, pieceLength);
    const results = tasks.map((segs, i) =>
      this.run(
        { id: this.nextId++, pieceLength, segments: segs, padTail: (opts.padTail ?? false) && i === tasks.length - 1 },
        opts.onProgress,
      ),
    );
    return Promise.all(results).then((parts) => ({
      pieces: Buffer.concat(parts.map((p) => p.pieces)),
      paddedTail: parts.length && parts[parts.length - 1]!.paddedTail ? Buffer.from(parts[parts.length - 1]!.paddedTail!) : null,
    }));
  }

  private run(task: HashTask, onProgress?: (bytes: number) => void) {
    if (this.closed) return Promise.reject(new Error('hash pool is closed'));
    return new Promise<{ pieces: Uint8Array; paddedTail: Uint8Array | null }>((resolve, reject) => {
      this.queue.push({ task, onProgress, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.queue.length) {
      const worker = this.idle.pop() ?? this.spawn();
      if (!worker) return;
      const job = this.queue.shift()!;
      this.busy.set(worker, job);
      worker.ref();
      worker.postMessage(job.task);
    }
  }

  private spawn(): Worker | null {
    if (this.workers.length >= this.size) return null;
    const worker = new Worker(WORKER_URL);
    this.workers.push(worker);
    worker.on('message', (msg: WorkerMessage) => this.onMessage(worker, msg));
    worker.on('error', (err) => this.onExit(worker, err));
    worker.on('exit', (code) => this.onExit(worker, new Error(`hash worker exited with code ${code}`)));
    return worker;
  }

  private onMessage(worker: Worker, msg: WorkerMessage): void {
    const job = this.busy.get(worker);
    if (!job || job.task.id !== msg.id) return;
    if (msg.type === 'progress') {
      job.onProgress?.(msg.bytes);
      return;
    }
    this.busy.delete(worker);
    worker.unref();
    this.idle.push(worker);
    if (msg.type === 'done') job.resolve({ pieces: msg.pieces, paddedTail: msg.paddedTail });
    else if (msg.code === 'changed') job.reject(new PkgError('changed', `${msg.path}: changed while it was hashed (${msg.message})`));
    else job.reject(fsError(Object.assign(new Error(msg.message), { code: msg.errno }), msg.path));
    this.dispatch();
  }

  // A worker that dies fails its job and is replaced on demand.
  private onExit(worker: Worker, err: Error): void {
    const i = this.workers.indexOf(worker);
    if (i < 0) return;
    this.workers.splice(i, 1);
    this.idle = this.idle.filter((w) => w !== worker);
    const job = this.busy.get(worker);
    this.busy.delete(worker);
    job?.reject(err);
    if (!this.closed) this.dispatch();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new Error('hash pool is closed'));
    const workers = this.workers.splice(0);
    await Promise.all(workers.map((w) => w.terminate()));
  }
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
      current.push({ path: seg.path, offset, length: take });
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
