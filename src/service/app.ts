// The request handler: route, dispatch, and turn every failure into a short
// answer. Nothing a client sends reaches a 500 or a stack trace.
import type { IncomingMessage } from 'node:http';
import type { ServeMetrics } from './metrics.js';
import { accessLog, type AccessWriter } from './access-log.js';
import type { ServiceResponse } from './service-response.js';
import type { ServiceContext } from './context.js';
import { handleDigest } from './digest.js';
import { handleFile } from './static-files.js';
import { handleNullfile } from './nullfile.js';
import { sendError } from './respond.js';
import { route } from './router.js';
import { handleSimple } from './simple.js';

export function requestHandler(ctx: ServiceContext, writeLog: AccessWriter, metrics: ServeMetrics | null = null) {
  return (req: IncomingMessage, res: ServiceResponse): void => {
    accessLog(res, performance.now(), writeLog);
    res.metrics = metrics;
    // A cached digest GET is answered synchronously (no promise); everything else settles later.
    try {
      dispatch(ctx, req, res)?.catch((err: unknown) => sendError(req, res, err, ctx.log));
    } catch (err) {
      sendError(req, res, err, ctx.log);
    }
  };
}

function dispatch(ctx: ServiceContext, req: IncomingMessage, res: ServiceResponse): Promise<void> | void {
  const r = route(req.url ?? '/', ctx.serviceName);
  // The metrics' handler label; a target the router refuses stays 'other'.
  res.handler = r.kind === 'file' ? (ctx.files ? 'files' : 'other') : r.kind;
  switch (r.kind) {
    case 'digest':
      return handleDigest(ctx, req, res, r.digest);
    case 'simple':
      return handleSimple(ctx, req, res, r.path);
    case 'nullfile':
      return handleNullfile(ctx, req, res, r.size);
    case 'file':
      return handleFile(ctx, req, res, r.path);
  }
}
