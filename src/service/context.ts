// What every handler needs, built once per process by the server.
import type { MirrorRoot } from '../core/root.js';
import type { TrackerList } from '../core/trackers.js';
import type { BaseUrlOptions } from './base-url.js';
import type { Torrents } from './torrents.js';

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
}
