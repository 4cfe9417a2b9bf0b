// Requests to the mirror (http or https) and relaying its answers. Hop-by-hop
// headers stay on their own hop; everything else passes unchanged (no
// decompression: the client gets the mirror's bytes).
import { request as httpRequest, type ClientRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { PkgError } from '../core/errors.js';

const HOP_BY_HOP = new Set(['connection', 'proxy-connection', 'keep-alive', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

export function endToEnd(headers: IncomingHttpHeaders): OutgoingHttpHeaders {
  const named = new Set(String(headers.connection ?? '').toLowerCase().split(/\s*,\s*/));
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP_BY_HOP.has(k) && !named.has(k)) out[k] = v;
  return out;
}

export interface Upstream {
  /** The request itself, already ended unless `body` was null (the caller writes and ends it). */
  request: ClientRequest;
  response: Promise<IncomingMessage>;
  abort(): void;
}

/** Starts a request; `body` is piped in when given (a client's POST); null leaves it open for the caller. */
export function send(url: URL, method: string, headers: OutgoingHttpHeaders, timeoutMs: number, body?: NodeJS.ReadableStream | null): Upstream {
  const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method, headers, timeout: timeoutMs });
  const response = new Promise<IncomingMessage>((resolve, reject) => {
    req.once('response', resolve);
    req.once('error', (e) => reject(new PkgError('io', `${url.host}: ${e.message}`)));
    req.once('timeout', () => req.destroy(new Error('timed out')));
  });
  response.catch(() => undefined);
  if (body) body.pipe(req);
  else if (body === undefined) req.end();
  return { request: req, response, abort: () => req.destroy() };
}

/** A small GET read whole (a torrent); null on any failure, never throws. */
export async function getSmall(url: URL, timeoutMs: number, maxBytes: number): Promise<{ status: number; body: Buffer } | null> {
  const up = send(url, 'GET', {}, timeoutMs);
  const timer = setTimeout(() => up.abort(), timeoutMs);
  try {
    const res = await up.response;
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of res as AsyncIterable<Buffer>) {
      n += c.length;
      if (n > maxBytes) {
        up.abort();
        return null;
      }
      chunks.push(c);
    }
    return { status: res.statusCode ?? 0, body: Buffer.concat(chunks) };
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

/** Relays a response whole: status, end-to-end headers, body. Resolves to the body bytes sent. */
export function relay(up: IncomingMessage, res: ServerResponse): Promise<number> {
  res.writeHead(up.statusCode ?? 502, endToEnd(up.headers));
  return pipeBody(up, res);
}

/** Pipes a body on, counting bytes; resolves when it ended or either side broke off. */
export function pipeBody(up: IncomingMessage, res: ServerResponse, onData?: (n: number) => void): Promise<number> {
  return new Promise((resolve) => {
    let n = 0;
    up.on('data', (c: Buffer) => {
      n += c.length;
      onData?.(c.length);
    });
    const done = () => resolve(n);
    up.once('end', () => res.end(done));
    up.once('error', () => {
      res.destroy();
      done();
    });
    res.once('close', () => {
      up.destroy();
      done();
    });
    up.pipe(res, { end: false });
  });
}
