// Writing responses: torrents with the exact headers the yum-torrent client
// parses, the 412 that must not be cached, and short text errors. Every
// status a client can cause is decided here from a PkgError's kind.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ServiceResponse } from './service-response.js';
import { PkgError } from '../core/errors.js';
import { printable } from './printable.js';
import type { InfoEntry } from '../core/info-entry.js';
import type { ServiceContext } from './context.js';
import type { Torrent } from './torrents.js';

export const TORRENT_TYPE = 'application/x-bittorrent';
/** Seconds a client should wait after a 503 before asking again. */
export const RETRY_AFTER_S = 5;

/** A status that is not an error kind of the core: wrong method. */
export class MethodNotAllowed extends Error {
  constructor(readonly allow: readonly string[]) {
    super('method not allowed');
  }
}

/**
 * A client error decided by a library we hand the request to (`send`'s 412
 * and 416), answered with its status and headers (416 carries
 * Content-Range: bytes * /N) and a short reason of ours.
 */
export class ClientHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

/**
 * writeHead with the headers object (the fast path of node:http), noting
 * the body length the access log cannot read back from headers given so.
 */
export function writeHead(res: ServerResponse, status: number, headers: Record<string, string | number>): void {
  const len = headers['Content-Length'];
  if (typeof len === 'number' && res instanceof ServiceResponse) res.bodyLength = len;
  res.writeHead(status, headers);
}

export function allowMethods(req: IncomingMessage, allow: readonly string[]): void {
  if (!allow.includes(req.method ?? '')) throw new MethodNotAllowed(allow);
}

/** Answers a torrent once the service's hand-out hook (ServiceContext.handOut) is done with it. */
export function answerTorrent(ctx: ServiceContext, req: IncomingMessage, res: ServerResponse, e: InfoEntry, t: Torrent): Promise<void> | void {
  const wait = ctx.handOut?.(e, t);
  if (!wait) return sendTorrent(req, res, t);
  return wait.then(() => sendTorrent(req, res, t));
}

export function sendTorrent(req: IncomingMessage, res: ServerResponse, t: Pick<Torrent, 'bytes' | 'disposition'>): void {
  // Already answered (timed out while building): the result is cached for the retry.
  if (res.headersSent) return;
  writeHead(res, 200, {
    'Content-Type': TORRENT_TYPE,
    // Unquoted on purpose (made so in Torrents.torrent): the client strips "attachment; filename=" and uses the rest.
    'Content-Disposition': t.disposition,
    'Content-Length': t.bytes.length,
  });
  res.end(req.method === 'HEAD' ? undefined : t.bytes);
}

/** 412 rather than 404: HTTP caches in front of the mirror keep 404s. */
export function sendNotCached(req: IncomingMessage, res: ServerResponse): void {
  if (res.headersSent) return;
  const body = Buffer.from('torrent not cached: POST the paths to build it\n');
  writeHead(res, 412, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': body.length,
    'Cache-Control': 'no-cache, no-store, must-revalidate',
    Pragma: 'no-cache',
    Expires: '0',
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * Out of file descriptors is load, not a bug: from wherever it comes (a
 * glob's walk, a file opened while building), a 503 with Retry-After and
 * one log line, never a 500 with a stack.
 */
function asLoad(err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (!(err instanceof PkgError) && (code === 'EMFILE' || code === 'ENFILE')) {
    return new PkgError('io', `out of file descriptors (${code}): try again shortly; the operator may raise the limit (LimitNOFILE)`);
  }
  return err;
}

export function statusOf(err: unknown): number {
  if (err instanceof MethodNotAllowed) return 405;
  if (err instanceof ClientHttpError) return err.status;
  if (err instanceof PkgError) return err.httpStatus;
  return 500;
}

/**
 * A short text/plain reason. Messages of PkgErrors are written for users and
 * name only root-relative paths; anything else is an internal error whose
 * details go to the operator's log, never to the client.
 */
export function sendError(req: IncomingMessage, res: ServerResponse, error: unknown, log: (line: string) => void): void {
  const err = asLoad(error);
  const status = statusOf(err);
  if (err instanceof PkgError && res instanceof ServiceResponse && err.reason && err.reason !== 'outside-root') res.limit = err.reason;
  if (status === 500) logInternal(req, err, log);
  // The mirror's storage failing is the operator's business too; one line, no stack.
  else if (err instanceof PkgError && err.kind === 'io') log(`${req.method} ${printable(req.url ?? '')}: ${err.message}`);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const reason = status === 500 ? 'internal error' : (err as Error).message.replace(/[\r\n]+/g, ' ');
  const body = Buffer.from(reason + '\n');
  const headers: Record<string, string | number> = {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': body.length,
    'Cache-Control': 'no-store',
  };
  if (status === 503) headers['Retry-After'] = RETRY_AFTER_S;
  if (err instanceof MethodNotAllowed) headers.Allow = err.allow.join(', ');
  if (err instanceof ClientHttpError) Object.assign(headers, err.headers);
  // A body we refused to read must not be parsed as the next request.
  if (status === 413) headers.Connection = 'close';
  writeHead(res, status, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** Stacks already written to the log: a bug that any request can hit is logged in full once, then one line each time. */
const loggedStacks = new Set<string>();
const MAX_LOGGED_STACKS = 256;

function logInternal(req: IncomingMessage, err: unknown, log: (line: string) => void): void {
  const where = `${req.method} ${printable(req.url ?? '')}`;
  const stack = (err as Error)?.stack ?? String(err);
  if (loggedStacks.has(stack)) {
    log(`internal error on ${where}: ${(err as Error)?.message ?? String(err)} (stack logged before)`);
    return;
  }
  if (loggedStacks.size < MAX_LOGGED_STACKS) loggedStacks.add(stack);
  log(`internal error on ${where}: ${stack}`);
}
