// Finding a package's torrent: http://host/<seg1>/<rest> has its single-file
// torrent at http://host/<seg1>/<service>/simple/<seg1>/<rest>. A prefix
// whose service does not answer with a torrent is remembered for a while
// and goes direct, so a mirror without pkgtorrent costs one lookup.
import bencode from 'bencode';
import { sha1 } from '../core/metainfo.js';
import { getSmall } from './upstream.js';

export interface PackageTorrent {
  /** The torrent with its own web seeds removed: the proxy names the mirror URL itself. */
  torrent: Buffer;
  infoHash: string;
  name: string;
  length: number;
  pieceLength: number;
  /** 20 bytes per piece. */
  pieces: Buffer;
  /** Announce URLs of the torrent (announce-list, else announce). */
  trackers: string[];
  /** BEP 27: peers from the trackers only (the service's private setting). */
  private?: boolean;
}

const text = (v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : null);

export function torrentUrl(url: URL, serviceName: string): URL | null {
  const m = /^\/([^/]+)\/(.+)$/.exec(url.pathname);
  if (!m) return null;
  return new URL(`${url.protocol}//${url.host}/${m[1]}/${serviceName}/simple/${m[1]}/${m[2]}`);
}

/**
 * A torrent is used only if it describes exactly one file with the
 * requested name (and length, when known); anything else (a multi-file
 * torrent, another file, a changed size) is null: go direct.
 */
export function parsePackageTorrent(bytes: Buffer, name: string, length?: number): PackageTorrent | null {
  const decoded = decodeTorrent(bytes);
  if (!decoded) return null;
  const { t, info } = decoded;
  if ('files' in info) return null;
  const pieceLength = info['piece length'];
  const pieces = info.pieces;
  const size = info.length;
  if (text(info.name) !== name || typeof size !== 'number' || !Number.isSafeInteger(size) || size <= 0) return null;
  if ((length !== undefined && size !== length) || typeof pieceLength !== 'number' || pieceLength <= 0) return null;
  if (!(pieces instanceof Uint8Array) || pieces.length !== 20 * Math.ceil(size / pieceLength)) return null;
  delete t['url-list'];
  return {
    torrent: Buffer.from(bencode.encode(t)),
    infoHash: sha1(bencode.encode(info)).toString('hex'),
    name,
    length: size,
    pieceLength,
    pieces: Buffer.from(pieces),
    trackers: trackersOf(t),
    private: info.private === 1,
  };
}

/** A torrent decoded, with its info dictionary; null for anything that is not one. */
function decodeTorrent(bytes: Buffer): { t: Record<string, unknown>; info: Record<string, unknown> } | null {
  let t: Record<string, unknown>;
  try {
    t = bencode.decode(bytes) as Record<string, unknown>;
  } catch {
    return null;
  }
  const info = t?.info as Record<string, unknown> | undefined;
  return info && typeof info === 'object' ? { t, info } : null;
}

/** Announce URLs of a decoded torrent (announce-list, else announce). */
function trackersOf(t: Record<string, unknown>): string[] {
  const trackers: string[] = [];
  if (Array.isArray(t['announce-list'])) {
    for (const tier of t['announce-list'] as unknown[]) if (Array.isArray(tier)) for (const u of tier) if (text(u)) trackers.push(text(u)!);
  }
  if (!trackers.length && text(t.announce)) trackers.push(text(t.announce)!);
  return trackers;
}

/** A multi-file torrent of a set of files (digest mode, `pkgtorrent fetch`); its name is its files' directory, the mirror prefix. */
export interface SetTorrent extends PackageTorrent {
  /** Every entry in order, padding (BEP 47, attr p) included; `length` is the sum of them all. */
  files: Array<{ path: string[]; length: number; pad: boolean }>;
}

/** A multi-file torrent named `name`, its web seeds removed; null when it is anything else or malformed. */
export function parseSetTorrent(bytes: Buffer, name: string): SetTorrent | null {
  const decoded = decodeTorrent(bytes);
  if (!decoded) return null;
  const { t, info } = decoded;
  if (!Array.isArray(info.files) || text(info.name) !== name) return null;
  const pieceLength = info['piece length'];
  const pieces = info.pieces;
  if (typeof pieceLength !== 'number' || !Number.isSafeInteger(pieceLength) || pieceLength <= 0) return null;
  const files: SetTorrent['files'] = [];
  let length = 0;
  for (const f of info.files as unknown[]) {
    const e = f as Record<string, unknown> | null;
    const size = e?.length;
    const path = Array.isArray(e?.path) ? (e.path as unknown[]).map(text) : [];
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0 || path.length === 0 || path.some((s) => s === null)) return null;
    files.push({ path: path as string[], length: size, pad: (text(e!.attr) ?? '').includes('p') });
    length += size;
  }
  if (length <= 0 || !(pieces instanceof Uint8Array) || pieces.length !== 20 * Math.ceil(length / pieceLength)) return null;
  delete t['url-list'];
  delete t.httpseeds;
  return {
    torrent: Buffer.from(bencode.encode(t)),
    infoHash: sha1(bencode.encode(info)).toString('hex'),
    name,
    length,
    pieceLength,
    pieces: Buffer.from(pieces),
    trackers: trackersOf(t),
    files,
  };
}

export class TorrentLookup {
  private noService = new Map<string, number>();
  /** Prefixes that answered a torrent: a later 404 there is about one file, not the service. */
  private withService = new Set<string>();

  constructor(
    private readonly o: { serviceName: string; timeoutMs: number; noServiceTtlMs: number; now?: () => number },
  ) {}

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** The prefix a negative answer is remembered for: scheme, host and first segment. */
  private key(url: URL): string {
    return `${url.protocol}//${url.host}/${url.pathname.split('/')[1]}`;
  }

  knownWithoutService(url: URL): boolean {
    const until = this.noService.get(this.key(url));
    if (until === undefined) return false;
    if (until > this.now()) return true;
    this.noService.delete(this.key(url));
    return false;
  }

  /**
   * The prefixes (scheme://host/seg1) this lookup knows about, for the
   * status page: service true where it answered a torrent, false where it
   * did not (within the no-service TTL). Read-only.
   */
  knownPrefixes(): Array<{ prefix: string; service: boolean }> {
    const now = this.now();
    const out = [...this.withService].map((prefix) => ({ prefix, service: true }));
    for (const [prefix, until] of this.noService) if (until > now && !this.withService.has(prefix)) out.push({ prefix, service: false });
    return out;
  }

  /** The torrent for `url`, or null (and why) to go direct. */
  async find(url: URL, name: string, length?: number): Promise<{ torrent: PackageTorrent | null; why: string }> {
    const tu = torrentUrl(url, this.o.serviceName);
    if (!tu) return { torrent: null, why: 'no prefix' };
    const r = await getSmall(tu, this.o.timeoutMs, 16 * 1024 * 1024);
    // A 404, an error, no answer or something other than a torrent means
    // no service there (for a package the service has not got, the mirror
    // answers the direct request that follows).
    const notService = (why: string) => {
      if (this.withService.has(this.key(url))) return { torrent: null, why };
      this.noService.set(this.key(url), this.now() + this.o.noServiceTtlMs);
      return { torrent: null, why };
    };
    if (!r) return notService('no service');
    if (r.status !== 200) return notService(`service answered ${r.status}`);
    if (!isTorrent(r.body)) return notService('service answer is not a torrent');
    if (this.withService.size > 1024) this.withService.clear();
    this.withService.add(this.key(url));
    const torrent = parsePackageTorrent(r.body, name, length);
    if (!torrent) return { torrent: null, why: 'torrent does not match the file' };
    return { torrent, why: '' };
  }
}

function isTorrent(bytes: Buffer): boolean {
  try {
    const t = bencode.decode(bytes) as Record<string, unknown>;
    return !!t && typeof t.info === 'object';
  } catch {
    return false;
  }
}
