// A byte progress bar on a terminal; nothing at all otherwise (cron, pipes).
import { createRequire } from 'node:module';
import { formatBytes } from '../core/size.js';
import type { OutStream } from './env.js';

export interface Progress {
  add(bytes: number): void;
  stop(): void;
}

const SILENT: Progress = { add() {}, stop() {} };

// Loaded only when a bar is shown: cli-progress and its dependencies are a
// dozen modules, a noticeable part of a short `make` run, and cron or a pipe
// never needs them.
const require = createRequire(import.meta.url);
const loadCliProgress = (): typeof import('cli-progress') => require('cli-progress') as typeof import('cli-progress');

export function byteProgress(stream: OutStream, total: number, label: string): Progress {
  if (!stream.isTTY || total === 0) return SILENT;
  const started = Date.now();
  let done = 0;
  const cliProgress = loadCliProgress();
  const bar = new cliProgress.SingleBar(
    {
      stream: stream,
      format: `${label} {bar} {percentage}% | {doneBytes}/{totalBytes} | {rate}/s | ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 50,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { doneBytes: formatBytes(0), totalBytes: formatBytes(total), rate: formatBytes(0) });
  return {
    add(bytes: number) {
      done += bytes;
      const secs = Math.max((Date.now() - started) / 1000, 0.001);
      bar.update(done, { doneBytes: formatBytes(done), rate: formatBytes(done / secs) });
    },
    stop() {
      bar.stop();
    },
  };
}
