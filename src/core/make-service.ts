// `make --layout service`: the torrent `serve` would answer for these files,
// built through the same piece cache, so a shell and the service agree.
import { withHashPool } from './hash-pool-run.js';
import { PieceCache } from './piece-cache.js';
import { PieceStore } from './piece-store.js';
import fg from 'fast-glob';
import { PkgError, usageError } from './errors.js';
import type { MirrorFile, MirrorRoot } from './root.js';
import { urlPathToRel } from './url-path.js';
import { buildServiceInfo, serviceTorrent, serviceWebSeed } from './service-layout.js';
import { magnetLink, pieceCount } from './metainfo.js';
import type { MadeTorrent } from './plain-torrent.js';

export interface MakeServiceOptions {
  files: MirrorFile[];
  cacheDir: string;
  pieceLength: number;
  serviceName: string;
  baseUrl: string;
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
      return await buildServiceInfo(store, o.files, kind, o.pieceLength, o.serviceName, (n) => bar.add(n));
    } finally {
      bar.stop();
    }
  });
  return {
    bytes: serviceTorrent(info, o.baseUrl, o.trackers),
    infoHash: info.infoHash.toString('hex'),
    magnet: magnetLink(info.infoHash, info.name, o.trackers, [serviceWebSeed(info, o.baseUrl)]),
    name: info.name,
    size: o.files.reduce((s, f) => s + f.size, 0),
    pieceLength: o.pieceLength,
    files: o.files.length,
    pieces: pieceCount(info.bytes),
    hashed,
  };
}

/**
 * The files for PATHs as `serve` reads them: URL paths under the root,
 * percent-decoded by the same rule. Messages name the path as given, with its
 * leading slash, and the root it is under.
 */
export function resolveServicePaths(root: MirrorRoot, paths: readonly string[]): MirrorFile[] {
  return paths.map((path) => {
    const shown = path.startsWith('/') ? path : `/${path}`;
    const where = `${shown} (under root ${root.dir})`;
    if (fg.isDynamicPattern(path)) {
      throw usageError(`${shown}: --layout service takes file paths, not globs (a name with * ? [ or { in it is written percent-encoded: %2A)`);
    }
    let rel: string;
    try {
      rel = urlPathToRel(shown);
    } catch (e) {
      // Malformed text is bad usage here; '..' and the like stay 'forbidden'.
      if (e instanceof PkgError && e.kind === 'bad-request') throw usageError(e.message);
      throw e;
    }
    try {
      return root.file(rel);
    } catch (e) {
      if (!(e instanceof PkgError)) throw e;
      const reason = e.message.startsWith(`${rel}: `) ? e.message.slice(rel.length + 2) : e.message;
      if (reason === 'not a regular file') throw usageError(`${where}: not a regular file; --layout service takes files, not directories`);
      throw new PkgError(e.kind, `${where}: ${reason}`);
    }
  });
}
