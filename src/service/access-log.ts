// One line per request on stderr: time, method, path, status, bytes, duration.
// The path is the raw request target with anything unprintable escaped, so a
// hostile URL cannot forge or break log lines. With --log-format json the
// same fields, plus the client's address and user agent, are one JSON object
// (JSON's own escaping then keeps a line a line).
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { ServiceResponse } from './service-response.js';
import { printable } from './printable.js';
import { isoNow } from '../core/iso-now.js';

/** What one access line says, in either format. */
export interface AccessEntry {
  method: string;
  /** The raw request target. */
  path: string;
  status: number;
  /** The answer did not reach its end: `bytes` is what left, and the text status carries '!'. */
  cut: boolean;
  bytes: number;
  ms: number;
}

export type AccessWriter = (req: IncomingMessage, e: AccessEntry) => void;

/** The text line, batched by `write` (a LogBuffer). */
export function textAccessLog(write: (line: string) => void): AccessWriter {
  // The method needs no escaping: the HTTP parser accepts only the methods it knows.
  return (_req, e) => write(`${isoNow()} ${e.method} ${printable(e.path)} ${e.cut ? `${e.status}!` : e.status} ${e.bytes} ${tenths(e.ms)}ms\n`);
}

/** The JSON object; `logger` writes through the same LogBuffer (json-log.ts). */
export function jsonAccessLog(logger: Logger): AccessWriter {
  return (req, e) =>
    logger.info({
      client: req.socket?.remoteAddress,
      agent: req.headers['user-agent'],
      method: e.method,
      path: e.path,
      status: e.status,
      cut: e.cut,
      bytes: e.bytes,
      ms: Math.round(e.ms * 10) / 10,
    }, 'access');
}

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

/**
 * Writes the request's line when its response closes. One shared listener,
 * and the response's own declared fields (ServiceResponse) rather than a
 * closure per request: this runs on every request.
 */
export function accessLog(res: ServiceResponse, started: number, write: AccessWriter): void {
  res.startedAt = started;
  res.logTo = write;
  res.socketBytesAtStart = res.socket?.bytesWritten ?? 0;
  // 'close' comes after 'finish' too, and alone when the client went away.
  res.on('close', logLine);
}

/** The 'close' listener: `res` is the response it was added to, as for every EventEmitter listener. */
function logLine(this: ServiceResponse): void {
  writeLine(this);
}

function writeLine(res: ServiceResponse): void {
  const req = res.req;
  const ms = performance.now() - res.startedAt;
  const aborted = !res.writableFinished;
  // Our own answers record their length; `send` sets the header itself.
  const declared = res.bodyLength ?? Number(res.getHeader('content-length') ?? 0);
  let bytes = req.method === 'HEAD' || res.statusCode === 304 ? 0 : declared;
  if (aborted) {
    // What left for the client: the connection's bytes since this answer
    // began, less its header block (node's own copy of it, `_header`).
    // Mirror egress is the figure this system exists to lower, so a cut
    // answer must not be logged as if it had been sent whole.
    const written = (res.socket?.bytesWritten ?? res.socketBytesAtStart) - res.socketBytesAtStart;
    const header = (res as unknown as { _header?: string | null })._header?.length ?? 0;
    bytes = Math.max(0, Math.min(bytes, written - header));
  }
  res.metrics?.observe(res, bytes, ms);
  res.logTo?.(req, { method: req.method ?? '-', path: req.url ?? '-', status: res.statusCode, cut: aborted, bytes, ms });
}

/** `ms.toFixed(1)` for a duration (never negative), without toFixed's cost on every request. */
export function tenths(ms: number): string {
  const t = Math.round(ms * 10);
  return `${Math.floor(t / 10)}.${t % 10}`;
}
