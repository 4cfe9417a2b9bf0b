// The mirror's HTTP as a fallback source of pieces: one Range request for a
// run of consecutive pieces, each piece checked against the torrent's SHA-1
// as soon as its last byte arrives and handed on at once. This replaces the
// BEP 19 web seed inside the engine, which claims whole spans of the file
// and asks the mirror for pieces that peers could have given.
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { PackageTorrent } from './lookup.js';
import { send } from './upstream.js';

/** The User-Agent of these requests, so a mirror's log tells them from a package manager's. */
export const PIECE_AGENT = 'pkgtorrent-proxy (pieces)';

export interface PieceRun {
  first: number;
  count: number;
}

export interface PieceFetch {
  /** Bytes the mirror sent for this run so far (counted, whatever became of them). */
  received: number;
  done: Promise<void>;
  abort(): void;
}

/**
 * Fetches `run` from `url`; `onPiece` gets each piece whose SHA-1 matches.
 * Resolves when the run ended, however (a short or failed answer just
 * leaves its pieces to another source).
 */
export function fetchPieces(url: URL, t: PackageTorrent, run: PieceRun, timeoutMs: number, onPiece: (index: number, data: Buffer) => void): PieceFetch {
  const from = run.first * t.pieceLength;
  const to = Math.min(t.length, (run.first + run.count) * t.pieceLength) - 1;
  const up = send(url, 'GET', { range: `bytes=${from}-${to}`, 'user-agent': PIECE_AGENT }, timeoutMs);
  const f: PieceFetch = { received: 0, done: Promise.resolve(), abort: () => up.abort() };
  f.done = (async () => {
    let res: IncomingMessage;
    try {
      res = await up.response;
    } catch {
      return;
    }
    // Only the exact span: a mirror ignoring Range would send the whole file.
    if (res.statusCode !== 206 || res.headers['content-range'] !== `bytes ${from}-${to}/${t.length}`) {
      res.destroy();
      return;
    }
    let index = run.first;
    let piece = Buffer.allocUnsafe(pieceSize(t, index));
    let filled = 0;
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        f.received += chunk.length;
        let at = 0;
        while (at < chunk.length) {
          const n = Math.min(piece.length - filled, chunk.length - at);
          chunk.copy(piece, filled, at, at + n);
          filled += n;
          at += n;
          if (filled === piece.length) {
            if (createHash('sha1').update(piece).digest().equals(t.pieces.subarray(index * 20, index * 20 + 20))) onPiece(index, piece);
            index++;
            if (index >= run.first + run.count) break;
            piece = Buffer.allocUnsafe(pieceSize(t, index));
            filled = 0;
          }
        }
      }
    } catch {
      // Cut off: the pieces not whole are asked again, of peers or the mirror.
    }
  })();
  return f;
}

export function pieceSize(t: Pick<PackageTorrent, 'length' | 'pieceLength'>, index: number): number {
  return Math.min(t.pieceLength, t.length - index * t.pieceLength);
}
