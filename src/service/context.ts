// What every handler needs, built once per process by the server.
import type { MirrorRoot } from '../core/root.js';
import type { TrackerList } from '../core/trackers.js';
import type { BaseUrlOptions } from './base-url.js';
import type { InfoEntry } from '../core/info-entry.js';
import type { Torrent, Torrents } from './torrents.js';

export interface ServiceContext {
  root: MirrorRoot;
  torrents: Torrents;
  trackers: TrackerList;
  pieceLength: number;
  serviceName: string;
  baseUrl: BaseUrlOptions;
  limits: { maxBody: number; maxPaths: number; maxGlobMatches: number };
  /** Serve the files under the root too (--files). */
  files: boolean;
  requestTimeoutMs: number;
  log: (line: string) => void;
  /**
   * Called with every torrent before it is answered (the tracker whitelist,
   * the origin seeder); a promise holds the answer until it settles. Cheap
   * and synchronous (undefined) for a torrent handed out before.
   */
  handOut?: (e: InfoEntry, t: Torrent) => Promise<void> | undefined;
}
