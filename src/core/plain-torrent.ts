// The torrent mktorrent makes from a file or directory: its tracker and
// web-seed lists as mktorrent reads them from the command line, and the info
// dictionary and outer keys as mktorrent writes them, so the info hash is
// mktorrent's own for the same input and piece length.
import { stat } from 'node:fs/promises';
import { PkgError, usageError } from './errors.js';
import { measureContent, openContent, type Content } from './file-list.js';
import { hashContent, type HashedContent } from './content-hash.js';
import { withHashPool } from './hash-pool-run.js';
import { HASH_LEN } from './hash-task.js';
import { CREATED_BY, encodeTorrent, magnetLink, sha1, type EncodedInfo } from './metainfo.js';
import { resolvePieceLength, type PieceLengthSpec } from './piece-length.js';
import { announceUrlProblem, webSeedUrlProblem } from './urls.js';

/** -a values as tiers: each flag a tier, commas separating URLs of one tier. */
export function announceTiers(values: readonly string[]): string[][] {
  const tiers = values.map((v) => splitUrls(v, '-a'));
  for (const url of tiers.flat()) checkUrl(url, '-a', announceUrlProblem(url, { webTorrent: true }));
  return tiers.filter((t) => t.length);
}

/** -w values: every flag and every comma-separated URL one web seed (BEP 19). */
export function webSeeds(values: readonly string[]): string[] {
  const urls = values.flatMap((v) => splitUrls(v, '-w'));
  for (const url of urls) checkUrl(url, '-w', webSeedUrlProblem(url));
  return urls;
}

function splitUrls(value: string, flag: string): string[] {
  const urls = value.split(',').map((u) => u.trim());
  if (urls.some((u) => u === '')) throw usageError(`${flag} '${value}': empty URL`);
  return urls;
}

function checkUrl(url: string, flag: string, problem: string | null): void {
  if (problem) throw usageError(`${flag} '${url}': ${problem}`);
}

/** A name given with -n: it becomes a file or directory name on every client. */
export function checkTorrentName(name: string): string {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw usageError(`invalid name '${name}': it becomes a file or directory name on every client`);
  }
  return name;
}

export interface PlainTorrentSpec {
  name: string;
  /** The content's file entries and piece hashes (see hashContent). */
  content: Pick<HashedContent, 'kind' | 'totalSize' | 'fileEntries' | 'pieces'>;
  pieceLength: number;
  private?: boolean;
  source?: string;
  tiers: string[][];
  webSeeds: string[];
  comment?: string;
  /** Unix seconds; undefined leaves the date out. */
  creationDate?: number;
}

export function plainTorrent(s: PlainTorrentSpec): { info: EncodedInfo; bytes: Buffer } {
  const info = encodePlainInfo(s);
  const flat = s.tiers.flat();
  const bytes = encodeTorrent(info.bytes, {
    announce: flat[0],
    // As mktorrent: a lone tracker goes in `announce` only.
    announceList: flat.length > 1 ? s.tiers : undefined,
    urlList: s.webSeeds,
    comment: s.comment,
    createdBy: CREATED_BY,
    creationDate: s.creationDate,
  });
  return { info, bytes };
}

/**
 * The info dictionary, bencoded directly around the `files` entries the
 * walk already encoded: the general encoder builds an object and a buffer
 * per string of every file's entry, which on a tree of small packages was
 * most of `make`'s memory (several KiB per file). Keys are in byte order, as
 * bencoding requires: files|length, name, piece length, pieces, private,
 * source.
 */
export function encodePlainInfo(s: Pick<PlainTorrentSpec, 'name' | 'content' | 'pieceLength' | 'private' | 'source'>): EncodedInfo {
  const { kind, totalSize, fileEntries, pieces } = s.content;
  const files = kind === 'single' ? [Buffer.from(`d6:lengthi${totalSize}e`)] : [Buffer.from('d5:filesl'), fileEntries, Buffer.from('e')];
  const head = `4:name${str(s.name)}12:piece lengthi${s.pieceLength}e6:pieces${pieces.length}:`;
  let tail = '';
  if (s.private) tail += '7:privatei1e';
  if (s.source) tail += `6:source${str(s.source)}`;
  const bytes = Buffer.concat([...files, Buffer.from(head), pieces, Buffer.from(tail + 'e')]);
  return { bytes, infoHash: sha1(bytes) };
}

const str = (v: string) => `${Buffer.byteLength(v)}:${v}`;

export interface MakePlainOptions extends Omit<PlainTorrentSpec, 'content' | 'pieceLength'> {
  /** Absolute path of the file or directory. */
  target: string;
  /** The path as the user gave it, for messages. */
  display: string;
  pieceLength: PieceLengthSpec | undefined;
  /** Where the torrent will be written ('-' for a stream): an old one inside the tree is not content. */
  output: string;
  jobs: number;
  signal?: AbortSignal;
  /** A progress bar for this many bytes; absent when none is shown (the total then need not be known before hashing). */
  progress?: (totalBytes: number) => { add(bytes: number): void; stop(): void };
  /** Each file put into the torrent, in order, as the user names it (for -v). */
  onFile?: (path: string, size: number) => void;
}

/** A torrent made from a shell, with what `make` reports about it. */
export interface MadeTorrent {
  bytes: Buffer;
  infoHash: string;
  magnet: string;
  name: string;
  size: number;
  pieceLength: number;
  files: number;
  pieces: number;
}

/** The file or directory to make the torrent of, leaving out `old` (the output file, when it is inside). */
async function openTarget(o: MakePlainOptions, old: { dev: number; ino: number } | null): Promise<Content> {
  try {
    return openContent(o.target, { display: o.display, exclude: old ? [old] : [] });
  } catch (e) {
    // `make '*.iso'`: the shell did not expand it, and neither do we.
    if (e instanceof PkgError && e.kind === 'not-found' && (await import('fast-glob')).default.isDynamicPattern(o.display)) {
      throw usageError(`${o.display}: no such file or directory; make takes one file or directory, not a glob`);
    }
    throw e;
  }
}

/** Lists and hashes the content, then lays out the torrent as mktorrent does. */
export async function makePlainTorrent(o: MakePlainOptions): Promise<MadeTorrent> {
  const { content, pieceLength } = await withHashPool(o.jobs, o.signal, async (pool) => {
    // The output may lie inside the directory (`make -o x.torrent .`); with
    // --force the old torrent must not become part of the new one.
    const old = o.output === '-' ? null : await stat(o.output).catch(() => null);
    const source = await openTarget(o, old);
    // Only -l auto and a progress bar need the total before hashing: a
    // first walk adds it up (stat only, no reads).
    const measured = o.pieceLength === 'auto' || o.progress ? measureContent(source) : null;
    const pieceLength = resolvePieceLength(o.pieceLength, measured?.totalSize ?? 0);
    const bar = measured && o.progress ? o.progress(measured.totalSize) : null;
    try {
      const content = await hashContent(pool, source, { pieceLength, onProgress: bar ? (n) => bar.add(n) : undefined, onFile: o.onFile });
      // -l auto chose the piece length for the tree as it was.
      if (measured && resolvePieceLength(o.pieceLength, content.totalSize) !== pieceLength) {
        throw new PkgError('changed', `${o.display}: files changed while they were listed`);
      }
      return { content, pieceLength };
    } finally {
      bar?.stop();
    }
  });
  const { info, bytes } = plainTorrent({ ...o, content, pieceLength });
  return {
    bytes,
    infoHash: info.infoHash.toString('hex'),
    magnet: magnetLink(info.infoHash, o.name, o.tiers.flat(), o.webSeeds),
    name: o.name,
    size: content.totalSize,
    pieceLength,
    files: content.files,
    pieces: content.pieces.length / HASH_LEN,
  };
}
