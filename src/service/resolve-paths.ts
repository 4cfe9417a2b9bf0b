// Request paths to mirror files. Everything is checked by its text first
// (cheap, and a hostile list fails before any file-system call), then each
// path is resolved through MirrorRoot.file, the one place that opens nothing
// outside the root.
import { PkgError } from '../core/errors.js';
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

/** Checks that relative paths can form one multi-file torrent before touching the disk. */
export function checkSameFirstSegment(rels: readonly string[]): void {
  const first = rels[0]!.split('/')[0];
  for (const r of rels) {
    const segs = r.split('/');
    if (segs.length < 2) throw new PkgError('bad-request', `/${r}: a file at the top of the root cannot be in a multi-file torrent`);
    if (segs[0] !== first) throw new PkgError('bad-request', `paths under different first segments: '${first}' and '${segs[0]}'`);
  }
}

/** Resolves paths with bounded concurrency; the first failure wins. */
export async function resolveFiles(root: MirrorRoot, rels: readonly string[], cacheRel: string | null): Promise<MirrorFile[]> {
  const out: MirrorFile[] = new Array(rels.length);
  let next = 0;
  const lane = async () => {
    while (next < rels.length) {
      const i = next++;
      const rel = rels[i]!;
      if (insideCache(rel, cacheRel)) throw new PkgError('forbidden', `/${rel}: the cache is not part of the mirror`);
      out[i] = await root.file(rel);
    }
  };
  await Promise.all(Array.from({ length: Math.min(64, rels.length) }, lane));
  return out;
}

export function insideCache(rel: string, cacheRel: string | null): boolean {
  return cacheRel !== null && (rel === cacheRel || rel.startsWith(cacheRel + '/'));
}
