// `make --layout service`: the torrent `serve` would answer for these files,
// built through the same piece cache, so a shell and the service agree.
import { withHashPool } from './hash-pool-run.js';
import { PieceCache } from './piece-cache.js';
import { PieceStore } from './piece-store.js';
import { PkgError, usageError } from './errors.js';
import type { MirrorFile, MirrorRoot } from './root.js';
import { urlPathToRel } from './url-path.js';
import { filesForPath, type ServicePathOptions } from './service-paths.js';
import { buildServiceInfo, serviceTorrent, serviceWebSeeds, type InfoSettings } from './service-layout.js';
import { magnetLink, pieceCount } from './metainfo.js';
import type { MadeTorrent } from './plain-torrent.js';

export interface MakeServiceOptions {
  files: MirrorFile[];
  cacheDir: string;
  pieceLength: number;
  serviceName: string;
  baseUrl: string;
  /** Further web seeds' base URLs, after the mirror's own (the web-seeds setting). */
  webSeeds?: readonly string[];
  /** The private flag and source string, as serve's settings put them in. */
  infoSettings?: InfoSettings;
  trackers: string[];
  jobs: number;
  signal?: AbortSignal;
  warn: (line: string) => void;
  progress: (totalBytes: number) => { add(bytes: number): void; stop(): void };
}

/** The torrent, and how many of its files had to be hashed (the others came from the piece cache). */
export async function makeServiceTorrent(o: MakeServiceOptions): Promise<MadeTorrent & { hashed: number }> {
  const { info, hashed } = await withHashPool(o.jobs, o.signal, async (pool) => {
    const store = new PieceStore(new PieceCache(o.cacheDir), pool, {
      onCacheError: (rel, err) => o.warn(`${rel}: cannot write cache entry: ${err.message}`),
    });
    const bar = o.progress(o.files.reduce((s, f) => s + f.size, 0));
    try {
      const kind = o.files.length === 1 ? 'single' : 'multi';
      return await buildServiceInfo(store, o.files, kind, o.pieceLength, o.serviceName, (n) => bar.add(n), o.infoSettings);
    } finally {
      bar.stop();
    }
  });
  return {
    bytes: serviceTorrent(info, o.baseUrl, o.trackers, o.webSeeds),
    infoHash: info.infoHash.toString('hex'),
    magnet: magnetLink(info.infoHash, info.name, o.trackers, serviceWebSeeds(info, o.baseUrl, o.webSeeds)),
    name: info.name,
    size: o.files.reduce((s, f) => s + f.size, 0),
    pieceLength: o.pieceLength,
    files: o.files.length,
    pieces: pieceCount(info.bytes),
    hashed,
  };
}

/**
 * The files for PATHs as simple/ reads its path: URL paths under the root,
 * percent-decoded by the same rule, each a file or a glob (see filesForPath).
 * Messages name the path as given, with its leading slash, and the root it
 * is under.
 */
export async function resolveServicePaths(root: MirrorRoot, paths: readonly string[], o: ServicePathOptions): Promise<MirrorFile[]> {
  const files: MirrorFile[] = [];
  for (const path of paths) {
    const shown = path.startsWith('/') ? path : `/${path}`;
    let rel: string;
    try {
      rel = urlPathToRel(shown);
    } catch (e) {
      // Malformed text is bad usage here; '..' and the like stay 'forbidden'.
      if (e instanceof PkgError && e.kind === 'bad-request') throw usageError(e.message);
      throw e;
    }
    try {
      files.push(...(await filesForPath(root, rel, o)));
    } catch (e) {
      if (!(e instanceof PkgError)) throw e;
      const reason = e.message.replace(new RegExp(`^/?${escapeRegExp(rel)}: `), '');
      throw new PkgError(e.kind === 'bad-request' ? 'usage' : e.kind, `${shown} (under root ${root.dir}): ${reason}`);
    }
  }
  return files;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
