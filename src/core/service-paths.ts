// A service path as simple/ and `make --layout service` take it: a path under
// the root, percent-decoded already, that names a file or is a glob. One rule
// for both, so a shell and the service pick the same files for the same text.
import { PkgError } from './errors.js';
import { globFiles, isGlob, parseGlob } from './glob.js';
import { inTurns } from './limit.js';
import type { MirrorFile, MirrorRoot } from './root.js';

export interface ServicePathOptions {
  /** Most files a glob may match (max-glob-matches). */
  maxMatches: number;
  /** Stops a glob's walk (the client went away). */
  signal?: AbortSignal;
}

/**
 * The files one path names: the literal file when there is one (so names
 * with [ or * in them still work), else the glob's matches, sorted. A match
 * that the root refuses (a link leading out, into the cache) or that is no
 * file (a link to a directory) is not a match, so one bad link does not spoil
 * a glob. A directory is refused with a hint at its files.
 */
export async function filesForPath(root: MirrorRoot, rel: string, o: ServicePathOptions): Promise<MirrorFile[]> {
  let literal: MirrorFile;
  try {
    literal = root.file(rel);
  } catch (e) {
    if (!isGlob(rel)) throw hintDirectory(rel, e);
    return globMatches(root, rel, o);
  }
  return [literal];
}

async function globMatches(root: MirrorRoot, rel: string, o: ServicePathOptions): Promise<MirrorFile[]> {
  const rels = await globFiles(root, parseGlob(rel), { max: o.maxMatches, signal: o.signal });
  const files = (
    await inTurns(rels, 64, (r) => {
      try {
        return root.file(r);
      } catch (e) {
        if (e instanceof PkgError && (e.kind === 'forbidden' || e.kind === 'not-found')) return null;
        throw e;
      }
    })
  ).filter((f) => f !== null);
  if (files.length === 0) throw new PkgError('not-found', `/${rel}: no files match`);
  return files;
}

function hintDirectory(rel: string, err: unknown): unknown {
  if (!(err instanceof PkgError) || err.kind !== 'not-found' || !/not a regular file/.test(err.message)) return err;
  return new PkgError('not-found', `/${rel}: is a directory; ask for /${rel}/* for its files`);
}
