// Metainfo assembly: info dictionaries, the outer torrent dictionary, info
// hashes and magnet links. Pure functions over hashes that were computed
// elsewhere; nothing here reads files.
import bencode from 'bencode';
import { HASH_LEN, sha1 } from './hash-task.js';

export { CREATED_BY } from './version.js';
// Info hashes are SHA-1 of the info dictionary; callers of this module find the helper here.
export { sha1 };

/** One entry of a multi-file info dictionary's `files` list. */
export interface InfoFile {
  length: number;
  path: string[];
  /** BEP 47 attributes; "p" marks a padding file. */
  attr?: string;
}

interface InfoCommon {
  name: string;
  pieceLength: number;
  /** Concatenated SHA-1 piece hashes. */
  pieces: Uint8Array;
  private?: boolean;
  source?: string;
}

export type InfoSpec = (InfoCommon & { kind: 'single'; length: number }) | (InfoCommon & { kind: 'multi'; files: InfoFile[] });

/** An encoded info dictionary: its bytes are what the info hash is taken over. */
export interface EncodedInfo {
  bytes: Buffer;
  infoHash: Buffer;
}

export function infoDict(spec: InfoSpec): Record<string, unknown> {
  const d: Record<string, unknown> = {
    name: spec.name,
    'piece length': spec.pieceLength,
    pieces: spec.pieces,
  };
  if (spec.kind === 'single') d.length = spec.length;
  else d.files = spec.files.map((f) => (f.attr ? { attr: f.attr, length: f.length, path: f.path } : { length: f.length, path: f.path }));
  // mktorrent writes these inside info (they change the info hash on purpose).
  if (spec.private) d.private = 1;
  if (spec.source) d.source = spec.source;
  return d;
}

export function encodeInfo(spec: InfoSpec): EncodedInfo {
  const bytes = Buffer.from(bencode.encode(infoDict(spec)));
  return { bytes, infoHash: sha1(bytes) };
}

/** The keys of a torrent outside `info`. */
export interface TorrentMeta {
  announce?: string;
  announceList?: string[][];
  urlList?: string[];
  comment?: string;
  createdBy?: string;
  /** Unix seconds. */
  creationDate?: number;
}

/**
 * Encodes a whole torrent around already-encoded info bytes. Splicing the
 * bytes in, rather than decoding and re-encoding them, is what lets a cached
 * info dictionary be served with no bencode work and guarantees the info hash
 * never drifts.
 */
export function encodeTorrent(info: Uint8Array, meta: TorrentMeta): Buffer {
  const outer: Record<string, unknown> = {};
  if (meta.announce) outer.announce = meta.announce;
  if (meta.announceList?.length) outer['announce-list'] = meta.announceList;
  if (meta.comment) outer.comment = meta.comment;
  if (meta.createdBy) outer['created by'] = meta.createdBy;
  if (meta.creationDate !== undefined) outer['creation date'] = meta.creationDate;
  if (meta.urlList?.length) outer['url-list'] = meta.urlList;
  const keys = [...Object.keys(outer), 'info'].sort(compareBytes);
  const parts: Uint8Array[] = [Buffer.from('d')];
  for (const k of keys) {
    parts.push(bencode.encode(k));
    parts.push(k === 'info' ? info : bencode.encode(outer[k]));
  }
  parts.push(Buffer.from('e'));
  return Buffer.concat(parts);
}

// Bencoded dictionaries sort keys as raw byte strings.
function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** A magnet link: trackers as `tr`, web seeds as `ws` (BEP 19's magnet parameter), each percent-encoded. */
export function magnetLink(infoHash: Buffer, name: string, trackers: readonly string[] = [], webSeeds: readonly string[] = []): string {
  let uri = `magnet:?xt=urn:btih:${infoHash.toString('hex')}&dn=${encodeURIComponent(name)}`;
  for (const tr of trackers) uri += `&tr=${encodeURIComponent(tr)}`;
  for (const ws of webSeeds) uri += `&ws=${encodeURIComponent(ws)}`;
  return uri;
}

/** How many pieces an encoded info dictionary has, read from its own `pieces`. */
export function pieceCount(info: Uint8Array): number {
  const d = bencode.decode(info) as { pieces: Uint8Array };
  return d.pieces.length / HASH_LEN;
}
