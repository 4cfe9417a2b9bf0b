// One line per request on stderr: time, method, path, status, bytes, duration.
// The path is the raw request target with anything unprintable escaped, so a
// hostile URL cannot forge or break log lines.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { bodyLength } from './respond.js';

export function printable(s: string): string {
  if (/^[\x21-\x7e]{0,2048}$/.test(s)) return s;
  return s.replace(/[^\x21-\x7e]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`).slice(0, 2048);
}

/**
 * Collects lines and writes them once per turn of the event loop: under load
 * that is one write for many requests instead of a (synchronous, for files
 * and pipes) write each. `flush()` writes what is pending at once.
 */
export class LogBuffer {
  private pending: string[] = [];
  private scheduled = false;

  constructor(private readonly write: (text: string) => void) {}

  add(line: string): void {
    this.pending.push(line);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const text = this.pending.join('');
    this.pending = [];
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
