// Runs in a worker thread: one task per message, answered with its hashes.
// Disk reads of different tasks overlap, one per worker.
import { parentPort } from 'node:worker_threads';
import { blockBuffer, runTask } from './hash-run.js';
import type { HashTask, WorkerMessage } from './hash-task.js';

let buffer: Buffer | null = null;

parentPort!.on('message', (task: HashTask) => {
  buffer = blockBuffer(buffer, task.pieceLength);
  const reply = runTask(task, buffer, (bytes) => parentPort!.postMessage({ id: task.id, type: 'progress', bytes } satisfies WorkerMessage));
  const transfer = reply.type === 'done' ? [reply.pieces.buffer as ArrayBuffer] : [];
  parentPort!.postMessage(reply, transfer);
});
