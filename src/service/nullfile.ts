// Null files (pkgtorrent-service(8), "Null files"): the padding entries of multi-file torrents, fetched
// through the web seed by clients that ignore BEP 47. Zeros of any size up to
// the piece length, with Range and HEAD.
import type { IncomingMessage, ServerResponse } from 'node:http';
import parseRange from 'range-parser';
import { PkgError } from '../core/errors.js';
import { isByteZero } from './byte-zero.js';
import type { ServiceContext } from './context.js';
import { allowMethods, writeHead } from './respond.js';

let zeros = Buffer.alloc(0);

function zeroBytes(n: number): Buffer {
  if (zeros.length < n) zeros = Buffer.alloc(n);
  return zeros.subarray(0, n);
}

export function handleNullfile(ctx: ServiceContext, req: IncomingMessage, res: ServerResponse, size: number): void {
  allowMethods(req, ['GET', 'HEAD']);
  if (size > ctx.pieceLength) throw new PkgError('forbidden', `null files are at most the piece length (${ctx.pieceLength} bytes)`);
  // The content never changes, so one validator per size is exact.
  const etag = `"zero-${size}"`;
  const headers: Record<string, string | number> = {
    'Content-Type': 'application/octet-stream',
    'Accept-Ranges': 'bytes',
    'Cache-Control': 'public, max-age=31536000, immutable',
    ETag: etag,
  };
  let start = 0;
  let end = size - 1;
  let status = 200;
  const range = req.headers.range;
  const ifRange = req.headers['if-range'];
  if (range && (ifRange === undefined || ifRange === etag)) {
    const r = parseRange(size, range, { combine: true });
    if (r === -1) {
      writeHead(res, 416, { ...headers, 'Content-Range': `bytes */${size}`, 'Content-Length': 0 });
      res.end();
      return;
    }
    // Malformed (-2), multiple ranges or another unit: the whole body is a valid answer.
    if (r !== -2 && r.type === 'bytes' && r.length === 1) {
      start = r[0]!.start;
      end = r[0]!.end;
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    }
  }
  if (req.headers['if-none-match'] === etag && status === 200) {
    writeHead(res, 304, { ETag: etag });
    res.end();
    return;
  }
  const length = Math.max(0, end - start + 1);
  headers['Content-Length'] = length;
  // aria2 would otherwise wait for the idle timeout after a one-byte pad.
  if (isByteZero(status, length, headers['Content-Range'])) headers.Connection = 'close';
  writeHead(res, status, headers);
  res.end(req.method === 'HEAD' ? undefined : zeroBytes(length));
}
