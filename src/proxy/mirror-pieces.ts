// The mirror's HTTP as a fallback source of pieces: one Range request for a
// run of consecutive pieces, each piece checked against the torrent's SHA-1
// as soon as its last byte arrives and handed on at once. This replaces the
// BEP 19 web seed inside the engine, which claims whole spans of the file
// and asks the mirror for pieces that peers could have given.
//
// A piece lies inside one file at the mirror: a single-file torrent is the
// trivial case; in the service's multi-file torrents every file but the last
// is padded to a piece boundary (BEP 47 pad files), so a file's last piece
// ends in zeros. Those are added here, never asked of the mirror (its
// nullfile/ route exists for clients that ignore BEP 47).
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { HASH_LEN, sha1 } from '../core/hash-task.js';
import { encodePathForUrl } from '../core/service-layout.js';
import type { PackageTorrent, SetTorrent } from './lookup.js';
import { send } from './upstream.js';

/** The User-Agent of these requests, so a mirror's log tells them from a package manager's. */
export const PIECE_AGENT = 'pkgtorrent-proxy (pieces)';

export interface PieceRun {
  first: number;
  count: number;
}

/** A real file of a torrent: at the mirror, and where the engine writes it. */
export interface PieceFile {
  url: URL;
  /** The file on disk, in the engine's save path. */
  path: string;
  length: number;
}

/** Piece `index`: `length` bytes at `offset` of one file, then `zeroTail` bytes of padding (zeros). */
export interface PieceSpan {
  file: number;
  offset: number;
  length: number;
  zeroTail: number;
}

/** Where every piece of a torrent is, and what it must hash to. */
export interface PieceMap {
  pieceLength: number;
  /** Bytes of all pieces together, padding included. */
  length: number;
  /** SHA-1 of each piece, 20 bytes apiece. */
  pieces: Buffer;
  files: readonly PieceFile[];
  span(index: number): PieceSpan;
}

/** Whether `data` is piece `index` of the torrent (its SHA-1). */
export function pieceMatches(map: Pick<PieceMap, 'pieces'>, index: number, data: Uint8Array): boolean {
  return sha1(data).equals(map.pieces.subarray(index * HASH_LEN, (index + 1) * HASH_LEN));
}

export function pieceCount(map: Pick<PieceMap, 'length' | 'pieceLength'>): number {
  return Math.ceil(map.length / map.pieceLength);
}

/** A single-file torrent (the proxy's): piece i is at i × the piece length in the file at `url`, saved at `path`. */
export function singleFileMap(t: PackageTorrent, url: URL, path: string): PieceMap {
  return {
    pieceLength: t.pieceLength,
    length: t.length,
    pieces: t.pieces,
    files: [{ url, path, length: t.length }],
    span: (i) => ({ file: 0, offset: i * t.pieceLength, length: Math.min(t.pieceLength, t.length - i * t.pieceLength), zeroTail: 0 }),
  };
}

/**
 * A multi-file torrent of the service's layout (pkgtorrent-service(8),
 * TORRENT LAYOUT): each real file at `<base>/<name>/<path>` (each segment
 * percent-encoded, as the service's web seed is asked), saved under
 * `<saveDir>/<name>/<path>`; `files` are the torrent's real files in its
 * order, empty ones included (they hold no piece). Null when some piece is
 * not inside one real file followed only by padding: such a torrent cannot
 * be fetched from the mirror piece by piece.
 */
export function serviceLayoutMap(t: SetTorrent, base: string, saveDir: string): PieceMap | null {
  const { pieceLength } = t;
  const files: PieceFile[] = [];
  /** For each piece, its file (index into `files`). */
  const owner = new Int32Array(Math.ceil(t.length / pieceLength)).fill(-1);
  const starts: number[] = [];
  let at = 0;
  /** The piece boundary after the last real file: padding may fill up to it, and no further. */
  let padUntil = 0;
  for (const f of t.files) {
    if (f.pad) {
      if (at + f.length > padUntil) return null;
      at += f.length;
      continue;
    }
    const rel = [t.name, ...f.path].join('/');
    files.push({ url: new URL(`${base.replace(/\/+$/, '')}/${encodePathForUrl(rel)}`), path: join(saveDir, rel), length: f.length });
    starts.push(at);
    // An empty file holds no piece, wherever it is.
    if (f.length === 0) continue;
    if (at % pieceLength !== 0) return null;
    for (let p = at / pieceLength; p * pieceLength < at + f.length; p++) owner[p] = files.length - 1;
    at += f.length;
    padUntil = Math.ceil(at / pieceLength) * pieceLength;
  }
  if (at !== t.length || owner.some((o) => o < 0)) return null;
  return {
    pieceLength,
    length: t.length,
    pieces: t.pieces,
    files,
    span: (i) => {
      const file = owner[i]!;
      const offset = i * pieceLength - starts[file]!;
      const length = Math.min(pieceLength, files[file]!.length - offset);
      return { file, offset, length, zeroTail: Math.min(pieceLength, t.length - i * pieceLength) - length };
    },
  };
}

/** The longest start of `run` that one Range request can fetch: its pieces back to back in one file, padding only at the end. */
export function oneRequest(map: PieceMap, run: PieceRun): PieceRun {
  let prev = map.span(run.first);
  let count = 1;
  while (count < run.count) {
    const next = map.span(run.first + count);
    if (prev.zeroTail !== 0 || next.file !== prev.file || next.offset !== prev.offset + prev.length) break;
    prev = next;
    count++;
  }
  return { first: run.first, count };
}

export interface PieceFetch {
  /** Bytes the mirror sent for this run so far (counted, whatever became of them). */
  received: number;
  /** Of those, the bytes of pieces that arrived whole and failed their SHA-1 check. */
  wasted: number;
  done: Promise<void>;
  abort(): void;
}

/**
 * Fetches `run` (pieces back to back in one file: see oneRequest);
 * `onPiece` gets each piece whose SHA-1 matches, padding zeros included.
 * Resolves when the run ended, however (a short or failed answer just
 * leaves its pieces to another source).
 */
export function fetchPieces(map: PieceMap, run: PieceRun, timeoutMs: number, onPiece: (index: number, data: Buffer) => void): PieceFetch {
  const head = map.span(run.first);
  const tail = map.span(run.first + run.count - 1);
  const file = map.files[head.file]!;
  const from = head.offset;
  const to = tail.offset + tail.length - 1;
  const up = send(file.url, 'GET', { range: `bytes=${from}-${to}`, 'user-agent': PIECE_AGENT }, timeoutMs);
  const f: PieceFetch = { received: 0, wasted: 0, done: Promise.resolve(), abort: () => up.abort() };
  f.done = (async () => {
    let res: IncomingMessage;
    try {
      res = await up.response;
    } catch {
      return;
    }
    // Only the exact span: a mirror ignoring Range would send the whole file.
    if (res.statusCode !== 206 || res.headers['content-range'] !== `bytes ${from}-${to}/${file.length}`) {
      res.destroy();
      return;
    }
    let index = run.first;
    let span = head;
    let piece = Buffer.allocUnsafe(span.length + span.zeroTail);
    let filled = 0;
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        f.received += chunk.length;
        let at = 0;
        while (at < chunk.length) {
          const n = Math.min(span.length - filled, chunk.length - at);
          chunk.copy(piece, filled, at, at + n);
          filled += n;
          at += n;
          if (filled === span.length) {
            piece.fill(0, span.length);
            if (pieceMatches(map, index, piece)) onPiece(index, piece);
            else f.wasted += span.length;
            index++;
            if (index >= run.first + run.count) break;
            span = map.span(index);
            piece = Buffer.allocUnsafe(span.length + span.zeroTail);
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
