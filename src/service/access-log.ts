// One line per request on stderr: time, method, path, status, bytes, duration.
// The path is the raw request target with anything unprintable escaped, so a
// hostile URL cannot forge or break log lines.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { printable } from './printable.js';
import { bodyLength } from './respond.js';

/**
 * Collects lines and writes them at most every FLUSH_MS, or sooner when
 * FLUSH_BYTES are pending: under load that is one write for thousands of
 * requests instead of a (synchronous, for files and pipes) write per turn of
 * the event loop, which was the largest cost of a cached GET after the socket
 * writes themselves. A line is at most FLUSH_MS late; `flush()` (on stop)
 * writes what is pending at once.
 */
const FLUSH_MS = 50;
const FLUSH_BYTES = 64 * 1024;

export class LogBuffer {
  private pending: string[] = [];
  private bytes = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly write: (text: string) => void) {}

  add(line: string): void {
    this.pending.push(line);
    this.bytes += line.length;
    if (this.bytes >= FLUSH_BYTES) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.pending.length === 0) return;
    const text = this.pending.join('');
    this.pending = [];
    this.bytes = 0;
    this.write(text);
  }
}

// Formatting a date costs more than the rest of the line; one per millisecond is enough.
let lastMs = 0;
let lastIso = '';
function isoNow(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastIso = new Date(now).toISOString();
  }
  return lastIso;
}

export function accessLog(req: IncomingMessage, res: ServerResponse, started: bigint, write: (line: string) => void): void {
  const finish = () => {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const aborted = !res.writableFinished;
    // Our own answers record their length; `send` sets the header itself.
    const declared = bodyLength.get(res) ?? Number(res.getHeader('content-length') ?? 0);
    const bytes = req.method === 'HEAD' || res.statusCode === 304 ? 0 : declared;
    write(
      `${isoNow()} ${printable(req.method ?? '-')} ${printable(req.url ?? '-')} ` +
        `${aborted ? `${res.statusCode}!` : res.statusCode} ${bytes} ${ms.toFixed(1)}ms\n`,
    );
  };
  // 'close' comes after 'finish' too, and alone when the client went away.
  res.once('close', finish);
}
