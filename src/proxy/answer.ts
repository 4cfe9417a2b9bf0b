// Answering a package request from a shared download: headers with the
// length at once, then bytes as the verified prefix grows. Pieces arrive in
// the swarm's order, so the prefix can wait while later pieces come in:
// only a download that verifies no piece at all for the stall timeout, or
// fails, is finished from the mirror with a Range request, so a request
// the mirror could answer always completes.
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { SharedDownload } from './download.js';
import { pipeBody, send } from './upstream.js';

export interface Sent {
  /** Bytes sent from verified BitTorrent pieces (or the store). */
  torrentBytes: number;
  /** Bytes sent from the mirror after a fallback. */
  mirrorBytes: number;
  fallback: string;
  /** Why, in few words (the proxy's metrics): no progress, the download failed in the engine, anything else. */
  cause?: 'stalled' | 'engine' | 'other';
}

const CHUNK = 1024 * 1024;

/** Resolves when more may be written (false: the client is gone); `flushed` runs once the socket is done with `data`. */
function write(res: ServerResponse, data: Buffer, flushed: () => void = () => undefined): Promise<boolean> {
  return new Promise((resolve) => {
    if (res.destroyed) {
      flushed();
      return resolve(false);
    }
    if (res.write(data, () => flushed())) return resolve(true);
    const done = (ok: boolean) => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}

export async function answerFromDownload(
  res: ServerResponse,
  dl: SharedDownload,
  headers: OutgoingHttpHeaders,
  url: URL,
  stallMs: number,
): Promise<Sent> {
  const length = dl.t.length;
  res.writeHead(200, { ...headers, 'content-length': length });
  const sent: Sent = { torrentBytes: 0, mirrorBytes: 0, fallback: '' };
  let fh: Awaited<ReturnType<typeof open>> | null = null;
  try {
    while (sent.torrentBytes < length && !res.destroyed) {
      const at = sent.torrentBytes;
      // The last bytes wait for the download to be complete, that is in the
      // store: the client's next request for it (a retry, the next apt run)
      // finds it there rather than joining a download that is ending.
      const lastHeld = dl.state === 'running' && dl.verified === length && at >= lastPieceStart(dl);
      const held = dl.verified > at && !lastHeld ? dl.heldFrom(at) : null;
      if (held || (dl.verified > at && !lastHeld && dl.onDisk(at))) {
        let chunk = held?.data;
        if (!chunk) {
          // Behind the pieces held in memory: from the file, into a fresh
          // buffer the socket may keep; this piece only, as the next may be
          // checked in memory and not written yet.
          fh ??= await open(dl.path, 'r');
          const pieceEnd = (Math.floor(at / dl.t.pieceLength) + 1) * dl.t.pieceLength;
          const b = Buffer.allocUnsafe(Math.min(CHUNK, dl.verified - at, pieceEnd - at));
          const { bytesRead } = await fh.read(b, 0, b.length, at);
          if (bytesRead === 0) throw new Error('downloaded file shorter than its verified pieces');
          chunk = b.subarray(0, bytesRead);
        }
        if (!(await write(res, chunk, held?.release))) return sent;
        sent.torrentBytes += chunk.length;
        continue;
      }
      if (dl.state === 'failed') {
        sent.fallback = dl.failure;
        sent.cause = 'engine';
        break;
      }
      // Progress is any piece verified, in whatever order the swarm gives them.
      const pieces = dl.verifiedPieces;
      let timer: NodeJS.Timeout | undefined;
      const stalled = await Promise.race([
        dl.changed().then(() => false),
        new Promise<boolean>((r) => (timer = setTimeout(() => r(true), stallMs))),
      ]);
      clearTimeout(timer);
      // No new piece checked in stallMs, and none in memory to send (or only the last, which waits for the rest on disk).
      if (stalled && dl.verifiedPieces === pieces && (dl.verified === at || lastHeld)) {
        sent.fallback = `stalled ${stallMs} ms`;
        sent.cause = 'stalled';
        break;
      }
    }
  } catch (err) {
    sent.fallback = (err as Error).message;
    sent.cause = 'other';
  } finally {
    await fh?.close().catch(() => undefined);
  }
  if (sent.torrentBytes < length && !res.destroyed) sent.mirrorBytes = await rangeRest(res, url, sent.torrentBytes, length);
  else res.end();
  return sent;
}

/** Where the download's last piece starts. */
function lastPieceStart(dl: SharedDownload): number {
  return Math.floor((dl.t.length - 1) / dl.t.pieceLength) * dl.t.pieceLength;
}

/** The rest of the file from the mirror; a mirror that no longer has this file breaks the response off. */
async function rangeRest(res: ServerResponse, url: URL, from: number, length: number): Promise<number> {
  const up = send(url, 'GET', { range: `bytes=${from}-` }, 30_000);
  try {
    const r = await up.response;
    const cr = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(String(r.headers['content-range'] ?? ''));
    if (r.statusCode === 206 && cr && Number(cr[1]) === from && Number(cr[3]) === length) return await pipeBody(r, res);
    if (r.statusCode === 200 && Number(r.headers['content-length']) === length) {
      // A mirror ignoring Range: skip what was sent already.
      let skip = from;
      const rest = new Transform({
        transform(c: Buffer, _enc, done) {
          const keep = c.subarray(Math.min(skip, c.length));
          skip -= c.length - keep.length;
          done(null, keep);
        },
      });
      await pipeline(r, rest, res).catch(() => undefined);
      return length - from;
    }
    r.resume();
  } catch {
    // Below: the response cannot be completed.
  }
  res.destroy();
  return 0;
}

/** A stored file, whole. */
export function answerFromFile(res: ServerResponse, path: string, length: number, headers: OutgoingHttpHeaders): Promise<number> {
  res.writeHead(200, { ...headers, 'content-length': length });
  return new Promise((resolve) => {
    let n = 0;
    const s = createReadStream(path);
    s.on('data', (c) => (n += c.length));
    s.once('error', () => res.destroy());
    res.once('close', () => {
      s.destroy();
      resolve(n);
    });
    s.pipe(res);
  });
}
