// Runs in a worker thread: one task per message, answered with its hashes.
// Disk reads of different tasks overlap, one per worker.
import { parentPort } from 'node:worker_threads';
import { blockBuffer, runTask } from './hash-run.js';
import type { HashTask, WorkerMessage } from './hash-task.js';

let buffer: Buffer | null = null;

// A message is one task or a batch of small ones (a file of a few KiB is a
// millisecond of hashing, about what a message round trip costs); a batch is
// answered with one message holding every reply, in order.
parentPort!.on('message', (msg: HashTask | HashTask[]) => {
  const tasks = Array.isArray(msg) ? msg : [msg];
  const replies = tasks.map((task) => {
    buffer = blockBuffer(buffer, task.pieceLength);
    return runTask(task, buffer, (bytes) => parentPort!.postMessage({ id: task.id, type: 'progress', bytes } satisfies WorkerMessage));
  });
  const transfer = replies.flatMap((r) => (r.type === 'done' ? [r.pieces.buffer as ArrayBuffer] : []));
  parentPort!.postMessage(Array.isArray(msg) ? replies : replies[0], transfer);
});
