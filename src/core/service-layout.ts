// The service layout of pkgtorrent-service(8), TORRENT LAYOUT: the torrent `serve` answers and
// `make --layout service` reproduces. Per-file cached piece hashes are laid
// out with padding so every file starts on a piece boundary, which is what
// lets one file's hashes be reused across every permutation of packages.
import { posix } from 'node:path';
import bencode from 'bencode';
import { PkgError } from './errors.js';
import { inTurns } from './limit.js';
import { CREATED_BY } from './version.js';
import { encodeInfo, encodeTorrent, type EncodedInfo, type InfoFile } from './metainfo.js';
import type { FilePieces, FileStamp } from './piece-cache.js';
import type { PiecesResult } from './piece-store.js';
import type { MirrorFile } from './root.js';
import { DEFAULT_SERVICE_NAME } from './service-name.js';
import { trackerTiers } from './trackers.js';

export type ServiceKind = 'single' | 'multi';

/**
 * The keys of a service torrent's info dictionary that come from settings
 * rather than from the files: BEP 27's private flag and a source string (the
 * private and source settings). Both change the info hash.
 */
export interface InfoSettings {
  private?: boolean;
  /** Empty or undefined: no source key. */
  source?: string;
}

/** The settings an encoded info dictionary was built with, read from its own bytes (null: not a dictionary). */
function settingsOfInfo(bytes: Uint8Array): { private: boolean; source: string } | null {
  try {
    const d = bencode.decode(bytes) as { private?: unknown; source?: unknown };
    if (typeof d !== 'object' || d === null) return null;
    return { private: d.private === 1, source: d.source instanceof Uint8Array ? Buffer.from(d.source).toString('utf8') : '' };
  } catch {
    return null;
  }
}

const infoSettingsMemo = new WeakMap<Uint8Array, { private: boolean; source: string } | null>();

/**
 * Whether an info dictionary (a cached entry's) was built with these
 * settings. Read from the bytes that are answered, so the check cannot
 * disagree with the torrent; decoded once per entry read.
 */
export function infoHasSettings(bytes: Uint8Array, want: InfoSettings): boolean {
  let got = infoSettingsMemo.get(bytes);
  if (got === undefined) {
    got = settingsOfInfo(bytes);
    infoSettingsMemo.set(bytes, got);
  }
  return got !== null && got.private === !!want.private && got.source === (want.source ?? '');
}

/** What a service torrent is made of, apart from host and trackers. */
export interface ServiceInfo extends EncodedInfo {
  name: string;
  /** Appended to the base URL to form the web seed: "" or "pub/isos/". */
  webSeedSuffix: string;
  /** The files and the stamps the hashes were taken from, for revalidation. */
  files: Array<{ rel: string } & FileStamp>;
}

/**
 * Checks that the files can form one torrent of this kind: a multi-file
 * torrent needs every file under the same first segment (it becomes the
 * torrent's name, a directory on the client) and no file twice.
 */
export function checkServiceFiles(files: readonly MirrorFile[], kind: ServiceKind): void {
  if (files.length === 0) throw new PkgError('not-found', 'no files to put in the torrent');
  if (kind === 'single' && files.length !== 1) throw new Error('a single-file torrent has exactly one file');
  if (kind === 'multi') checkMultiFilePaths(files.map((f) => f.rel));
  // Clients refuse a torrent of no bytes (libtorrent: "invalid length of
  // torrent", Transmission: "Invalid metadata entry files"). Empty files
  // among others are zero-length entries, which all of them accept.
  if (files.every((f) => f.size === 0)) {
    const what = files.length === 1 ? `/${files[0]!.rel} is empty` : 'every file is empty';
    throw new PkgError('not-found', `${what}: a torrent needs at least one byte`);
  }
}

/**
 * The multi-file rule on root-relative paths alone, so the service can refuse
 * a bad list before any file-system call.
 */
export function checkMultiFilePaths(rels: readonly string[]): void {
  const first = rels[0]?.split('/')[0];
  const seen = new Set<string>();
  for (const rel of rels) {
    const segs = rel.split('/');
    if (segs.length < 2) throw new PkgError('bad-request', `${rel}: a file at the top of the root cannot be in a multi-file torrent`);
    if (segs[0] !== first) throw new PkgError('bad-request', `paths under different first segments: '${first}' and '${segs[0]}'`);
    if (seen.has(rel)) throw new PkgError('bad-request', `${rel}: listed twice`);
    seen.add(rel);
  }
}

/** Lays out already-known piece hashes; pure, so it can be tested alone. */
export function layoutServiceInfo(
  files: ReadonlyArray<{ rel: string; pieces: FilePieces }>,
  kind: ServiceKind,
  pieceLength: number,
  serviceName = DEFAULT_SERVICE_NAME,
  settings: InfoSettings = {},
): ServiceInfo {
  const extra = { private: settings.private, source: settings.source };
  const stamps = files.map((f) => ({ rel: f.rel, size: f.pieces.size, mtimeNs: f.pieces.mtimeNs }));
  if (kind === 'single') {
    const { rel, pieces } = files[0]!;
    const hashes = pieces.tail ? Buffer.concat([pieces.full, pieces.tail.plain]) : pieces.full;
    const name = posix.basename(rel);
    const dir = posix.dirname(rel);
    const info = encodeInfo({ kind: 'single', name, length: pieces.size, pieceLength, pieces: hashes, ...extra });
    return { ...info, name, webSeedSuffix: dir === '.' ? '' : `${dir}/`, files: stamps };
  }
  const name = files[0]!.rel.split('/')[0]!;
  const entries: InfoFile[] = [];
  const hashes: Buffer[] = [];
  const padsOfSize = new Map<number, number>();
  files.forEach(({ rel, pieces }, i) => {
    const last = i === files.length - 1;
    entries.push({ length: pieces.size, path: rel.split('/').slice(1) });
    hashes.push(pieces.full);
    if (!pieces.tail) return;
    if (last) {
      hashes.push(pieces.tail.plain);
      return;
    }
    hashes.push(pieces.tail.padded);
    const pad = pieceLength - (pieces.size % pieceLength);
    const k = padsOfSize.get(pad) ?? 0;
    padsOfSize.set(pad, k + 1);
    entries.push({ length: pad, path: [serviceName, 'nullfile', `${pad}_${k}`], attr: 'p' });
  });
  const info = encodeInfo({ kind: 'multi', name, files: entries, pieceLength, pieces: Buffer.concat(hashes), ...extra });
  return { ...info, name, webSeedSuffix: '', files: stamps };
}

/** Where a build gets each file's piece hashes: a PieceStore, or the service's memo in front of one. */
export interface PieceSource {
  get(file: MirrorFile, pieceLength: number, onProgress?: (bytes: number) => void): Promise<PiecesResult>;
}

export interface BuiltServiceInfo {
  info: ServiceInfo;
  /** How many of the files had to be hashed (the others came from a cache). */
  hashed: number;
}

/**
 * Builds the info of a service torrent, hashing only files the piece source
 * lacks. `onProgress` counts every byte of the torrent's files: hashed bytes
 * as they are hashed, a cached file's size when its hashes arrive.
 */
export async function buildServiceInfo(
  source: PieceSource,
  files: readonly MirrorFile[],
  kind: ServiceKind,
  pieceLength: number,
  serviceName = DEFAULT_SERVICE_NAME,
  onProgress?: (bytes: number) => void,
  settings: InfoSettings = {},
): Promise<BuiltServiceInfo> {
  checkServiceFiles(files, kind);
  // A cache hit starts with synchronous reads (see readCacheFileSync): 64
  // files a turn keep a service responsive during a large cold build.
  const results = await inTurns(files, 64, async (f) => {
    const r = await source.get(f, pieceLength, onProgress);
    if (!r.hashed) onProgress?.(f.size);
    return r;
  });
  const info = layoutServiceInfo(
    files.map((f, i) => ({ rel: f.rel, pieces: results[i]!.pieces })),
    kind,
    pieceLength,
    serviceName,
    settings,
  );
  return { info, hashed: results.filter((r) => r.hashed).length };
}

/** Percent-encodes each segment of a root-relative path for use in a URL. */
export function encodePathForUrl(rel: string): string {
  return rel
    .split('/')
    .map((s) => encodeURIComponent(s))
    .join('/');
}

/**
 * The full torrent: info bytes as they are, plus web seeds and trackers. The
 * same info, base URLs and trackers always give the same bytes (no date).
 * `moreWebSeeds` (the web-seeds setting: other mirrors of the same tree) follow
 * the mirror's own in url-list, in their order, laid out as it is.
 */
export function serviceTorrent(
  info: Pick<ServiceInfo, 'bytes' | 'infoHash' | 'webSeedSuffix'>,
  baseUrl: string,
  trackers: readonly string[],
  moreWebSeeds: readonly string[] = [],
): Buffer {
  const tiers = trackerTiers(trackers, info.infoHash.toString('hex'));
  return encodeTorrent(info.bytes, {
    announce: tiers[0]?.[0],
    announceList: tiers.length ? tiers : undefined,
    createdBy: CREATED_BY,
    urlList: serviceWebSeeds(info, baseUrl, moreWebSeeds),
  });
}

/** Every web seed of a service torrent: the mirror's own first, then each further base URL the same way. */
export function serviceWebSeeds(info: Pick<ServiceInfo, 'webSeedSuffix'>, baseUrl: string, moreWebSeeds: readonly string[] = []): string[] {
  return [baseUrl, ...moreWebSeeds].map((b) => serviceWebSeed(info, b));
}

/**
 * A web seed of a service torrent (BEP 19): the base URL, and for a single
 * file its directory, so a client appends the file's name (single file) or
 * the torrent's name and each file's path (multi-file).
 */
export function serviceWebSeed(info: Pick<ServiceInfo, 'webSeedSuffix'>, baseUrl: string): string {
  const suffix = info.webSeedSuffix ? `${encodePathForUrl(info.webSeedSuffix.slice(0, -1))}/` : '';
  return `${baseUrl.replace(/\/+$/, '')}/${suffix}`;
}
