// `make --layout service`: the torrent `serve` would answer for these files,
// built through the same piece cache, so a shell and the service agree.
import { withHashPool } from './hash-pool-run.js';
import { PieceCache } from './piece-cache.js';
import { PieceStore } from './piece-store.js';
import type { MirrorFile } from './root.js';
import { buildServiceInfo, serviceTorrent } from './service-torrent.js';
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
    magnet: magnetLink(info.infoHash, info.name, o.trackers),
    name: info.name,
    size: o.files.reduce((s, f) => s + f.size, 0),
    pieceLength: o.pieceLength,
    files: o.files.length,
    pieces: pieceCount(info.bytes),
    hashed,
  };
}
