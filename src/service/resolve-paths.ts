// Request paths to mirror files. Everything is checked by its text first
// (cheap, and a hostile list fails before any file-system call), then each
// path is resolved through MirrorRoot.file, the one place that opens nothing
// outside the root.
import { inTurns } from '../core/limit.js';
import type { MirrorFile, MirrorRoot } from '../core/root.js';

// The rule is shared with `make --layout service`, so it lives in core.
export { urlPathToRel } from '../core/url-path.js';

/**
 * Resolves paths, 64 per event-loop turn; the first failure wins. The root
 * decides on each file's resolved path whether it is the mirror's (not the
 * cache, not hidden, not outside), whatever the request spelled.
 */
export function resolveFiles(root: MirrorRoot, rels: readonly string[]): Promise<MirrorFile[]> {
  return inTurns(rels, 64, (rel) => root.file(rel));
}
