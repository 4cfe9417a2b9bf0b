// Runs in a worker thread: reads a task's segments in large blocks and hashes
// them piece by piece. One block is read ahead while the previous one is
// hashed, so disk reads (libuv's thread pool) overlap with SHA-1 (this thread).
import { parentPort } from 'node:worker_threads';
import { open, type FileHandle } from 'node:fs/promises';
import { createHash, hash as oneShotHash, type Hash } from 'node:crypto';
import type { HashTask, WorkerMessage } from './hash-task.js';

const BLOCK = 8 * 1024 * 1024;
const HASH_LEN = 20;

class ReadError extends Error {
  constructor(
    readonly code: 'changed' | 'io',
    readonly path: string,
    message: string,
    readonly errno?: string,
  ) {
    super(message);
  }
}

// Block size is a multiple of the piece length when pieces are small, so most
// pieces are hashed in one call without an intermediate Hash object.
function blockSize(pieceLength: number): number {
  return pieceLength >= BLOCK ? BLOCK : Math.floor(BLOCK / pieceLength) * pieceLength;
}

/** Yields the task's stream as filled blocks, reading the next while the caller hashes. */
async function* blocks(task: HashTask, buffers: [Buffer, Buffer]): AsyncGenerator<Buffer> {
  const size = buffers[0].length;
  let segIndex = 0;
  let segPos = 0;
  let fh: FileHandle | null = null;
  let fhPath = '';

  async function fill(buf: Buffer): Promise<number> {
    let filled = 0;
    while (filled < size && segIndex < task.segments.length) {
      const seg = task.segments[segIndex]!;
      if (segPos === seg.length) {
        segIndex++;
        segPos = 0;
        continue;
      }
      if (!fh || fhPath !== seg.path) {
        await fh?.close();
        fh = null;
        try {
          fh = await open(seg.path, 'r');
        } catch (e) {
          const err = e as NodeJS.ErrnoException;
          throw new ReadError(err.code === 'ENOENT' ? 'changed' : 'io', seg.path, err.message, err.code);
        }
        fhPath = seg.path;
      }
      const want = Math.min(size - filled, seg.length - segPos);
      let n: number;
      try {
        ({ bytesRead: n } = await fh.read(buf, filled, want, seg.offset + segPos));
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        throw new ReadError('io', seg.path, err.message, err.code);
      }
      if (n === 0) throw new ReadError('changed', seg.path, 'file shrank while it was read');
      filled += n;
      segPos += n;
    }
    return filled;
  }

  try {
    let which = 0;
    let pending = fill(buffers[which]!);
    for (;;) {
      const n = await pending;
      if (n === 0) return;
      const current = buffers[which]!;
      which ^= 1;
      pending = fill(buffers[which]!);
      // Keep the read-ahead's rejection from being reported as unhandled if
      // the consumer stops early; it is still awaited on the next turn.
      pending.catch(() => {});
      yield current.subarray(0, n);
    }
  } finally {
    await (fh as FileHandle | null)?.close();
  }
}

async function run(task: HashTask, buffers: [Buffer, Buffer]): Promise<WorkerMessage> {
  const { pieceLength } = task;
  const total = task.segments.reduce((s, x) => s + x.length, 0);
  const count = Math.ceil(total / pieceLength);
  const pieces = new Uint8Array(count * HASH_LEN);
  let piece = 0;
  let partial: Hash | null = null; // a piece that spans blocks
  let partialLen = 0;
  let paddedTail: Uint8Array | null = null;

  const emit = (digest: Uint8Array) => {
    pieces.set(digest, piece * HASH_LEN);
    piece++;
  };

  for await (const block of blocks(task, buffers)) {
    let pos = 0;
    while (pos < block.length) {
      if (partial === null && block.length - pos >= pieceLength) {
        emit(oneShotHash('sha1', block.subarray(pos, pos + pieceLength), 'buffer'));
        pos += pieceLength;
        continue;
      }
      partial ??= createHash('sha1');
      const take = Math.min(pieceLength - partialLen, block.length - pos);
      partial.update(block.subarray(pos, pos + take));
      partialLen += take;
      pos += take;
      if (partialLen === pieceLength) {
        emit(partial.digest());
        partial = null;
        partialLen = 0;
      }
    }
    parentPort!.postMessage({ id: task.id, type: 'progress', bytes: block.length } satisfies WorkerMessage);
  }
  if (partial !== null) {
    if (task.padTail) {
      const padded = partial.copy();
      const zeros = Buffer.alloc(Math.min(pieceLength - partialLen, BLOCK));
      for (let left = pieceLength - partialLen; left > 0; left -= zeros.length) {
        padded.update(left >= zeros.length ? zeros : zeros.subarray(0, left));
      }
      paddedTail = padded.digest();
    }
    emit(partial.digest());
  }
  return { id: task.id, type: 'done', pieces, paddedTail };
}

let buffers: [Buffer, Buffer] | null = null;
let buffersFor = 0;

parentPort!.on('message', async (task: HashTask) => {
  const size = blockSize(task.pieceLength);
  if (!buffers || buffersFor !== size) {
    buffers = [Buffer.allocUnsafe(size), Buffer.allocUnsafe(size)];
    buffersFor = size;
  }
  let reply: WorkerMessage;
  try {
    reply = await run(task, buffers);
  } catch (e) {
    const err = e instanceof ReadError ? e : new ReadError('io', '', (e as Error).message);
    reply = { id: task.id, type: 'error', code: err.code, path: err.path, message: err.message, errno: err.errno };
  }
  const transfer = reply.type === 'done' ? [reply.pieces.buffer as ArrayBuffer] : [];
  parentPort!.postMessage(reply, transfer);
});
