// The response class of serve's server (createServer's ServerResponse
// option): what the access log needs of each response, declared as fields so
// that every response has them from construction. Adding properties to a
// response afterwards changes its shape, and Node's HTTP code, which touches
// every response many times, then runs on objects of more than one shape.
import { ServerResponse, type IncomingMessage } from 'node:http';
import type { Handler, ServeMetrics } from './metrics.js';
import type { AccessWriter } from './access-log.js';
import type { LimitReason } from '../core/errors.js';

export class ServiceResponse<Req extends IncomingMessage = IncomingMessage> extends ServerResponse<Req> {
  /** The body length our own writeHead declared: headers given to writeHead as an object cannot be read back. */
  bodyLength: number | undefined = undefined;
  /** When the request arrived (performance.now), for its log line. */
  startedAt = 0;
  /** Where its log line goes; null until the access log takes the response. */
  logTo: AccessWriter | null = null;
  /** The connection's bytesWritten when this response began: a cut answer logs what it really sent. */
  socketBytesAtStart = 0;
  /** Which handler took the request (the metrics' handler label). */
  handler: Handler = 'other';
  /** This request built its torrent (rather than finding it cached). */
  built = false;
  /** A digest GET answered after a stat check of its files (outside the revalidation window). */
  revalidated = false;
  /** The bound of the service that refused it (serve's metrics: limit_rejections_total). */
  limit: LimitReason | null = null;
  /** Where its figures go when it closes, with --metrics-listen. */
  metrics: ServeMetrics | null = null;
}
