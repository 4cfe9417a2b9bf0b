// Request paths to mirror files. Everything is checked by its text first
// (cheap, and a hostile list fails before any file-system call), then each
// path is resolved through MirrorRoot.file, the one place that opens nothing
// outside the root.
import { PkgError } from '../core/errors.js';
import { inTurns } from '../core/limit.js';
import { checkRelPath, type MirrorFile, type MirrorRoot } from '../core/root.js';

/** URL path as the client sent it ("/pub/a%2B1.rpm") to a root-relative file path ("pub/a+1.rpm"). */
export function urlPathToRel(urlPath: string): string {
  if (!urlPath.startsWith('/')) throw new PkgError('bad-request', `'${urlPath}': paths must start with /`);
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    throw new PkgError('bad-request', `'${urlPath}': malformed percent-encoding`);
  }
  return checkRelPath(decoded);
}

/**
 * Resolves paths, 64 per event-loop turn; the first failure wins. The root
 * decides on each file's resolved path whether it is the mirror's (not the
 * cache, not hidden, not outside), whatever the request spelled.
 */
export function resolveFiles(root: MirrorRoot, rels: readonly string[]): Promise<MirrorFile[]> {
  return inTurns(rels, 64, (rel) => root.file(rel));
}
