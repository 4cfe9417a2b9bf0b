// Request paths to mirror files. Everything is checked by its text first
// (cheap, and a hostile list fails before any file-system call), then each
// path is resolved through MirrorRoot.file, the one place that opens nothing
// outside the root.
import { PkgError } from '../core/errors.js';
import { inTurns } from '../core/limit.js';
import type { MirrorFile, MirrorRoot } from '../core/root.js';

// The rule is shared with `make --layout service`, so it lives in core.
export { urlPathToRel } from '../core/url-path.js';

/** Resolves paths, 64 per event-loop turn; the first failure wins. */
export function resolveFiles(root: MirrorRoot, rels: readonly string[], cacheRel: string | null): Promise<MirrorFile[]> {
  return inTurns(rels, 64, (rel) => {
    if (insideCache(rel, cacheRel)) throw new PkgError('forbidden', `/${rel}: the cache is not part of the mirror`);
    return root.file(rel);
  });
}

export function insideCache(rel: string, cacheRel: string | null): boolean {
  return cacheRel !== null && (rel === cacheRel || rel.startsWith(cacheRel + '/'));
}
