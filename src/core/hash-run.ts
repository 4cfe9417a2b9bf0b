// Hashing one task: read its segments in blocks and hash them piece by piece.
// Pure computation over synchronous reads, shared by the hash worker threads
// and by a pool's inline lane (the calling thread hashing too, see HashPool).
// Reads are synchronous on purpose: a hashing thread has nothing else to do,
// and an async read would only hop to libuv's thread pool and back, which
// costs CPU that hashing needs (measured: about 15% of the throughput on two
// cores with the data in the page cache).
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { openInside } from './open-inside.js';
import { createHash, hash as oneShotHash, type Hash } from 'node:crypto';
import { HASH_LEN, type HashTask, type Segment, type TaskReply } from './hash-task.js';

// Small enough that a block is still in this core's L2 cache when it is
// hashed right after the read copied it there; larger blocks measured no
// faster. Pieces longer than a block are hashed incrementally.
const BLOCK = 1024 * 1024;
const PROGRESS_BYTES = 8 * 1024 * 1024;
/**
 * The zeros a padded tail is hashed with, made once per thread: a mirror of
 * small packages pads almost every file, and a fresh zero-filled buffer per
 * file was 9 % of a cold run's CPU (memset).
 */
const ZEROS = Buffer.alloc(BLOCK);

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

/** A read failure naming the file as the caller does (seg.name), also inside the system's message. */
function readError(code: ReadError['code'], seg: Segment, message: string, errno?: string): ReadError {
  const name = seg.name ?? seg.path;
  return new ReadError(code, name, message.split(seg.path).join(name), errno);
}

// Block size is a multiple of the piece length when pieces are small, so most
// pieces are hashed in one call without an intermediate Hash object.
function blockSize(pieceLength: number): number {
  return pieceLength >= BLOCK ? BLOCK : Math.floor(BLOCK / pieceLength) * pieceLength;
}

/** Yields the task's stream as filled blocks of `buf` (each valid until the next). */
function* blocks(task: HashTask, buf: Buffer): Generator<Buffer> {
  const size = buf.length;
  let segIndex = 0;
  let segPos = 0;
  let fd: number | null = null;
  let fdPath = '';

  function fill(): number {
    let filled = 0;
    while (filled < size && segIndex < task.segments.length) {
      const seg = task.segments[segIndex]!;
      if (segPos === seg.length) {
        segIndex++;
        segPos = 0;
        continue;
      }
      if (fd === null || fdPath !== seg.path) {
        if (fd !== null) closeSync(fd);
        fd = null;
        try {
          fd = task.within === undefined ? openSync(seg.path, 'r') : openInside(seg.path, task.within);
        } catch (e) {
          const err = e as NodeJS.ErrnoException;
          throw readError(err.code === 'ENOENT' ? 'changed' : 'io', seg, err.message, err.code);
        }
        if (fd === null) throw readError('changed', seg, 'it now resolves outside the root');
        fdPath = seg.path;
      }
      const want = Math.min(size - filled, seg.length - segPos);
      let n: number;
      try {
        n = readSync(fd, buf, filled, want, seg.offset + segPos);
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        throw readError('io', seg, err.message, err.code);
      }
      if (n === 0) throw readError('changed', seg, 'file shrank while it was read');
      filled += n;
      segPos += n;
      if (segPos === seg.length && seg.expect) checkExpected(fd, seg, seg.expect);
    }
    return filled;
  }

  try {
    for (let n = fill(); n > 0; n = fill()) yield buf.subarray(0, n);
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/** A file read through `fd` must still be the one listed (see Segment.expect). */
function checkExpected(fd: number, seg: Segment, expect: NonNullable<Segment['expect']>): void {
  const st = fstatSync(fd);
  if (st.ino !== expect.ino || st.size !== expect.size || st.mtimeMs !== expect.mtimeMs) {
    throw readError('changed', seg, 'it is not the file that was listed, or it was written to');
  }
}

/**
 * Where a stream shorter than one piece is read when its padded hash is
 * wanted (see shortPadded): zeros beyond what it holds, one per thread,
 * grown to the longest such piece up to PAD_MAX.
 */
let padArea: Buffer | null = null;
const PAD_MAX = 4 * 1024 * 1024;

/**
 * A whole task that is one short piece to be hashed padded: a package
 * smaller than the piece length, nearly every file of a mirror. It is read
 * into zeros, so both of its hashes are one-shot hashes of that buffer, the
 * plain one of its bytes and the padded one of the whole piece, where the
 * general path makes a Hash object, copies it and feeds it the zeros: two
 * objects and three calls per file. With the entry encoded in one buffer
 * (piece-cache.ts), paired cold runs of `hash` over 10k small files used
 * about 1.5 % less CPU. The zeros are put back however the read ends.
 */
function shortPadded(task: HashTask, total: number): TaskReply {
  const { pieceLength } = task;
  if (!padArea || padArea.length < pieceLength) padArea = Buffer.allocUnsafeSlow(pieceLength + READ_SKEW).fill(0).subarray(READ_SKEW);
  const area = padArea;
  try {
    for (const block of blocks(task, area.subarray(0, total))) {
      // One block: blocks() fills the buffer given, which is exactly the stream.
      const pieces = new Uint8Array(HASH_LEN);
      pieces.set(oneShotHash('sha1', block, 'buffer'));
      return { id: task.id, type: 'done', pieces, paddedTail: oneShotHash('sha1', area.subarray(0, pieceLength), 'buffer') };
    }
    // Not reached: blocks() yields that one block or throws.
    throw new ReadError('io', task.segments[0]?.name ?? '', 'nothing to read');
  } finally {
    area.fill(0, 0, total);
  }
}

function run(task: HashTask, buf: Buffer, onProgress: (bytes: number) => void): TaskReply {
  const { pieceLength } = task;
  const total = task.segments.reduce((s, x) => s + x.length, 0);
  if (task.padTail && total > 0 && total < pieceLength && pieceLength <= PAD_MAX) {
    const reply = shortPadded(task, total);
    onProgress(total);
    return reply;
  }
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

  // Progress is reported every few blocks: per block it is thousands of messages.
  let unreported = 0;
  for (const block of blocks(task, buf)) {
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
    unreported += block.length;
    if (unreported >= PROGRESS_BYTES) {
      onProgress(unreported);
      unreported = 0;
    }
  }
  if (unreported) onProgress(unreported);
  if (partial !== null) {
    if (task.padTail) {
      const padded = partial.copy();
      for (let left = pieceLength - partialLen; left > 0; left -= ZEROS.length) {
        padded.update(left >= ZEROS.length ? ZEROS : ZEROS.subarray(0, left));
      }
      paddedTail = padded.digest();
    }
    emit(partial.digest());
  }
  return { id: task.id, type: 'done', pieces, paddedTail };
}

/**
 * Runs a task to its reply: 'done' with the hashes, or 'error' for a file
 * that cannot be read or changed under us. `buf` is reusable scratch space of
 * blockSize(task.pieceLength) bytes.
 */
export function runTask(task: HashTask, buf: Buffer, onProgress: (bytes: number) => void): TaskReply {
  try {
    return run(task, buf, onProgress);
  } catch (e) {
    const err = e instanceof ReadError ? e : new ReadError('io', '', (e as Error).message);
    return { id: task.id, type: 'error', code: err.code, path: err.path, message: err.message, errno: err.errno };
  }
}

/**
 * A scratch buffer of the right size for tasks of this piece length, reusing
 * `prev` when it fits. Not where Buffer.allocUnsafe puts it: a large
 * allocation starts 16 bytes past a page boundary (malloc's header on its
 * own mapping), and the kernel's copy from the page-aligned page cache into
 * such a buffer runs about 3x slower (4K aliasing of loads and stores):
 * reading 512 MiB took 290 ms of system time there and 105 ms 2 KiB further
 * on, which was most of the gap to mktorrent on large files.
 */
export function blockBuffer(prev: Buffer | null, pieceLength: number): Buffer {
  const size = blockSize(pieceLength);
  if (prev?.length === size) return prev;
  return Buffer.allocUnsafeSlow(size + READ_SKEW).subarray(READ_SKEW, READ_SKEW + size);
}

/** How far into its allocation the read buffer starts (see blockBuffer). */
const READ_SKEW = 2048;
