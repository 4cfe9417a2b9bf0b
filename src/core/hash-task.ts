// The message types exchanged with hash workers, shared by both sides, and
// the SHA-1 helper every module that checks or names a hash uses.
import { hash } from 'node:crypto';

/** Bytes of one SHA-1 piece hash (BEP 3 `pieces`); every module that slices piece hashes uses this. */
export const HASH_LEN = 20;

/**
 * SHA-1 of `data` in one call, without a Hash object: for checksums of
 * cache entries (one per file of a cold `hash`) and info hashes. Here rather
 * than in metainfo.ts so that the caches need not load bencode.
 */
export function sha1(data: Uint8Array | string): Buffer {
  return hash('sha1', data, 'buffer');
}

/** A byte range of one file; a task's segments form one contiguous stream. */
export interface Segment {
  path: string;
  offset: number;
  length: number;
  /** How error messages name the file ("pub/x.rpm", the path the user gave); default: `path`. */
  name?: string;
  /**
   * The file as it was listed (stat's ino, size, mtimeMs): once this
   * segment is read, the file it was read from must still match, or the
   * task fails as 'changed'. A check on the open file, so that a listing
   * need not stat every file again after hashing it.
   */
  expect?: { ino: number; size: number; mtimeMs: number };
}

/**
 * Hash the pieces of a stream that starts on a piece boundary. Every piece but
 * the last is exactly `pieceLength` long; a short last piece is hashed as it is
 * and, when `padTail` is set, also as if zeros filled it to `pieceLength`.
 */
export interface HashTask {
  id: number;
  pieceLength: number;
  segments: Segment[];
  padTail: boolean;
  /**
   * When set (the mirror root), every file must lie under this directory as
   * opened, not only as resolved; one that does not is an error ('changed').
   */
  within?: string;
}

/** How a task ends. */
export type TaskReply =
  | { id: number; type: 'done'; pieces: Uint8Array; paddedTail: Uint8Array | null }
  | { id: number; type: 'error'; code: 'changed' | 'io'; path: string; message: string; errno?: string };

/** From a worker: progress, a task's reply, or the replies of a batch of tasks sent as one message. */
export type WorkerMessage = { id: number; type: 'progress'; bytes: number } | TaskReply | TaskReply[];
