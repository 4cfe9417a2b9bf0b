// Simple mode (SPEC 3.2): a path under the root, possibly a glob. One match
// is a single-file torrent cached under `<sha1(path)>_s`; several make a
// multi-file torrent cached under the digest a yum client would use for the
// same paths, so both kinds of client share it.
import type { IncomingMessage, ServerResponse } from 'node:http';
import fg from 'fast-glob';
import { realpath } from 'node:fs/promises';
import { PkgError } from '../core/errors.js';
import { sha1 } from '../core/metainfo.js';
import { checkRelPath, type MirrorFile } from '../core/root.js';
import { baseUrlFor } from './base-url.js';
import type { ServiceContext } from './context.js';
import { armBuildTimeout } from './timeout.js';
import { allowMethods, sendTorrent } from './respond.js';
import { checkMultiFilePaths } from '../core/service-torrent.js';
import { insideCache, resolveFiles } from './resolve-paths.js';

// Only *, ?, [...] and **: brace and extglob expansion could spell '..'.
const GLOB_OPTIONS = { braces: false, extglob: false } as const;

export async function handleSimple(ctx: ServiceContext, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  allowMethods(req, ['GET', 'HEAD']);
  const base = baseUrlFor(req, ctx.baseUrl);
  armBuildTimeout(ctx, req, res);
  const rel = checkRelPath(path);
  const statedAt = performance.now();
  const files = await matchFiles(ctx, rel);
  const key =
    files.length === 1 ? `${sha1('/' + files[0]!.rel).toString('hex')}_s` : sha1(files.map((f) => '/' + f.rel).join('\n')).toString('hex');
  const entry = await ctx.torrents.forFiles(key, files, files.length === 1 ? 'single' : 'multi', statedAt);
  const t = ctx.torrents.torrent(key, entry, base, await ctx.trackers.current());
  sendTorrent(req, res, t.bytes, t.infoHashHex);
}

/** A literal file wins over a pattern, so names with [ or * still work. */
async function matchFiles(ctx: ServiceContext, rel: string): Promise<MirrorFile[]> {
  const literal = await resolveFiles(ctx.root, [rel], ctx.cacheRel).catch((e: unknown) => e as Error);
  if (!(literal instanceof Error)) return literal;
  if (!fg.isDynamicPattern(rel, GLOB_OPTIONS)) throw literal;
  const rels = await glob(ctx, rel);
  if (rels.length === 0) throw new PkgError('not-found', `/${rel}: no files match`);
  if (rels.length > 1) checkMultiFilePaths(rels);
  // Symlinks found by the glob are resolved like any path: outside the root is refused.
  return resolveFiles(ctx.root, rels, ctx.cacheRel);
}

/** Matching regular files and symlinks, sorted, stopping past the cap. */
async function glob(ctx: ServiceContext, pattern: string): Promise<string[]> {
  const max = ctx.limits.maxGlobMatches;
  // fast-glob lists the pattern's static base directory as given, following
  // symlinks: make sure that one is inside the root before it is read.
  for (const task of fg.generateTasks(pattern, GLOB_OPTIONS)) {
    if (task.base === '.') continue;
    const real = await realpath(ctx.root.join(task.base)).catch(() => null);
    if (real === null) throw new PkgError('not-found', `/${pattern}: no files match`);
    if (!ctx.root.contains(real)) throw new PkgError('forbidden', `/${task.base}: resolves outside the root`);
  }
  const stream = fg.stream(pattern, {
    ...GLOB_OPTIONS,
    cwd: ctx.root.real,
    dot: false,
    onlyFiles: false,
    objectMode: true,
    // Never walk through a directory symlink: it may lead outside the root.
    followSymbolicLinks: false,
    suppressErrors: true,
  });
  const found: string[] = [];
  for await (const e of stream as AsyncIterable<fg.Entry>) {
    if (!e.dirent.isFile() && !e.dirent.isSymbolicLink()) continue;
    if (insideCache(e.path, ctx.cacheRel)) continue;
    found.push(e.path);
    if (found.length > max) {
      (stream as unknown as { destroy(): void }).destroy();
      throw new PkgError('too-large', `/${pattern}: more than ${max} files match`);
    }
  }
  return found.sort();
}
