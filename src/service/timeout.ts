// The build timeout of torrent requests (the server's requestTimeout covers
// receiving the request; this covers the answer).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PkgError } from '../core/errors.js';
import type { ServiceContext } from './context.js';
import { sendError } from './respond.js';

/**
 * For requests that may build a torrent: one that takes longer than the
 * request timeout goes on (its result is cached) while the client is told to
 * come back rather than kept waiting. Cache hits skip this timer.
 */
export function armBuildTimeout(ctx: ServiceContext, req: IncomingMessage, res: ServerResponse): void {
  res.setTimeout(ctx.requestTimeoutMs, () => {
    if (res.headersSent) res.destroy();
    else sendError(req, res, new PkgError('busy', 'request timed out; the torrent is still being built', 'request-timeout'), ctx.log);
  });
}
