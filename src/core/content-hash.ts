// Hashing the content that file-list.ts walks, as mktorrent hashes it: one
// stream whose pieces run across file boundaries, handed to the pool in
// chunks while the walk goes on, so no record per file is kept beyond its
// encoded `files` entry.
import { statSync } from 'node:fs';
import { PkgError } from './errors.js';
import type { Content, ContentFile } from './file-list.js';
import type { HashPool, Segment } from './hasher.js';

/** The content hashed: what the info dictionary is made of. */
export interface HashedContent {
  kind: 'single' | 'multi';
  files: number;
  totalSize: number;
  /** SHA-1 of every piece of the stream, the last one short. */
  pieces: Buffer;
  /** Multi-file: the bencoded dictionaries of the info's `files` list, in order, concatenated. */
  fileEntries: Buffer;
}

export interface HashOptions {
  pieceLength: number;
  onProgress?: (bytes: number) => void;
  /** Each file as it is listed, for -v. */
  onFile?: (display: string, size: number) => void;
}

/**
 * How much of the stream goes to the pool at a time: large enough that
 * messages cost nothing, small enough that both hashers finish close
 * together and that a tree of small files reaches the second hasher early.
 * A chunk ends at the first piece boundary past either limit.
 */
const CHUNK_BYTES = 4 * 1024 * 1024;
const CHUNK_FILES = 256;
/** Chunks handed to the pool and not yet answered, per hasher: the walk waits beyond that. */
const CHUNKS_AHEAD = 4;
/** Encoded `files` entries are kept as text until this many characters, then as bytes. */
const ENTRY_TEXT = 64 * 1024;

/**
 * Lists the content and hashes it as one stream: pieces run across file
 * boundaries, the last one is short, as mktorrent hashes. The walk runs
 * ahead of the hashers by a few chunks only. Each file, as it is read, must
 * still be the one listed, with its listed size and mtime, or the hashes
 * could mix two versions of it; the hasher checks that on the open file.
 */
export async function hashContent(pool: HashPool, content: Content, o: HashOptions): Promise<HashedContent> {
  const L = o.pieceLength;
  // Chunks are whole pieces (the pool hashes each from a piece boundary).
  const chunkBytes = Math.max(L, CHUNK_BYTES - (CHUNK_BYTES % L));
  const inFlight: Array<Promise<{ pieces: Buffer }>> = [];
  const pieces: Buffer[] = [];
  const entries: Buffer[] = [];
  const empty: ContentFile[] = [];
  let text = '';
  let files = 0;
  let pos = 0; // stream offset
  let limit = chunkBytes; // where the current chunk ends
  let segs: Segment[] = [];

  const settle = async () => void pieces.push((await inFlight.shift()!).pieces);
  const flush = async () => {
    if (segs.length) {
      const hashes = pool.hashStream(segs, L, { onProgress: o.onProgress });
      // Awaited in order below; a failure after an earlier one is not unhandled.
      hashes.catch(() => {});
      inFlight.push(hashes);
    }
    segs = [];
    limit = pos + chunkBytes;
    while (inFlight.length >= pool.size * CHUNKS_AHEAD) await settle();
  };

  for (const f of content.files()) {
    const { size } = f.stamp;
    files++;
    o.onFile?.(f.display, size);
    if (content.kind === 'multi') {
      text += `d6:lengthi${size}e4:pathl${f.pathItems}ee`;
      if (text.length >= ENTRY_TEXT) {
        entries.push(Buffer.from(text));
        text = '';
      }
    }
    if (size === 0) empty.push(f);
    for (let offset = 0; offset < size; ) {
      const length = Math.min(size - offset, limit - pos);
      segs.push({ path: f.abs, name: f.display, offset, length, expect: f.stamp });
      offset += length;
      pos += length;
      if (pos === limit && offset < size) await flush();
    }
    // Many small files: end the chunk at the next piece boundary.
    if (segs.length >= CHUNK_FILES) limit = Math.min(limit, Math.ceil(pos / L) * L);
    if (pos === limit) await flush();
  }
  await flush();
  while (inFlight.length) await settle();
  entries.push(Buffer.from(text));
  // Nothing of an empty file is read: it is checked by name.
  for (const f of empty) {
    const now = statSync(f.abs, { throwIfNoEntry: false });
    if (!now || now.ino !== f.stamp.ino || now.size !== 0 || now.mtimeMs !== f.stamp.mtimeMs) throw new PkgError('changed', `${f.display}: changed while it was hashed`);
  }

  if (files === 0) throw new PkgError('not-found', `${content.display}: empty directory, nothing to put in a torrent`);
  if (pos === 0) throw new PkgError('not-found', `${content.display}: every file is empty, nothing to put in a torrent`);
  return { kind: content.kind, files, totalSize: pos, pieces: Buffer.concat(pieces), fileEntries: Buffer.concat(entries) };
}
