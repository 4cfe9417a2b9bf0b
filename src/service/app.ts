// The request handler: route, dispatch, and turn every failure into a short
// answer. Nothing a client sends reaches a 500 or a stack trace.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { accessLog } from './access-log.js';
import type { ServiceResponse } from './service-response.js';
import type { ServiceContext } from './context.js';
import { handleDigest } from './digest.js';
import { handleFile } from './static-files.js';
import { handleNullfile } from './nullfile.js';
import { sendError } from './respond.js';
import { route } from './router.js';
import { handleSimple } from './simple.js';

export function requestHandler(ctx: ServiceContext, writeLog: (line: string) => void) {
  return (req: IncomingMessage, res: ServiceResponse): void => {
    accessLog(res, performance.now(), writeLog);
    // A cached digest GET is answered synchronously (no promise); everything else settles later.
    try {
      dispatch(ctx, req, res)?.catch((err: unknown) => sendError(req, res, err, ctx.log));
    } catch (err) {
      sendError(req, res, err, ctx.log);
    }
  };
}

function dispatch(ctx: ServiceContext, req: IncomingMessage, res: ServerResponse): Promise<void> | void {
  const r = route(req.url ?? '/', ctx.serviceName);
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
