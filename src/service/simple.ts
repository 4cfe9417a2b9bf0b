// Simple mode (pkgtorrent-service(8), "Simple mode"): a path under the root, possibly a glob. One match
// is a single-file torrent cached under `<sha1(path)>_s`; several make a
// multi-file torrent cached under the digest a yum client would use for the
// same paths, so both kinds of client share it.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PkgError } from '../core/errors.js';
import { globFiles, isGlob, parseGlob } from '../core/glob.js';
import { inTurns } from '../core/limit.js';
import { sha1 } from '../core/metainfo.js';
import { checkRelPath, type MirrorFile } from '../core/root.js';
import { baseUrlFor } from './base-url.js';
import type { ServiceContext } from './context.js';
import { armBuildTimeout } from './timeout.js';
import { allowMethods, sendTorrent } from './respond.js';
import { checkMultiFilePaths } from '../core/service-layout.js';
import { resolveFiles } from './resolve-paths.js';

export async function handleSimple(ctx: ServiceContext, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  allowMethods(req, ['GET', 'HEAD']);
  const base = baseUrlFor(req, ctx.baseUrl);
  armBuildTimeout(ctx, req, res);
  const rel = checkRelPath(path);
  const statedAt = ctx.torrents.now();
  const files = await matchFiles(ctx, rel, res);
  const key =
    files.length === 1 ? `${sha1('/' + files[0]!.rel).toString('hex')}_s` : sha1(files.map((f) => '/' + f.rel).join('\n')).toString('hex');
  const entry = await ctx.torrents.forFiles(key, files, files.length === 1 ? 'single' : 'multi', statedAt);
  const t = ctx.torrents.torrent(key, entry, base, await ctx.trackers.current());
  sendTorrent(req, res, t.bytes, t.infoHashHex);
}

/** A literal file wins over a pattern, so names with [ or * still work. */
async function matchFiles(ctx: ServiceContext, rel: string, res: ServerResponse): Promise<MirrorFile[]> {
  const literal = await resolveFiles(ctx.root, [rel]).catch((e: unknown) => e as Error);
  if (!(literal instanceof Error)) return literal;
  if (!isGlob(rel)) throw hintDirectory(ctx, rel, literal);
  const glob = parseGlob(rel);
  // The walk stops when the client goes away or the build timeout answers it.
  const gone = new AbortController();
  res.once('close', () => gone.abort());
  const rels = await globFiles(ctx.root, glob, { max: ctx.limits.maxGlobMatches, skip: ctx.cacheRel, signal: gone.signal });
  // Symlinks found by the glob are resolved like any path; one the root
  // refuses (leading outside, into the cache) or that is no file (a link to
  // a directory) is not a match, so one bad link does not spoil a glob.
  const files = (
    await inTurns(rels, 64, (r) => {
      try {
        return ctx.root.file(r);
      } catch (e) {
        if (e instanceof PkgError && (e.kind === 'forbidden' || e.kind === 'not-found')) return null;
        throw e;
      }
    })
  ).filter((f) => f !== null);
  if (files.length === 0) throw new PkgError('not-found', `/${rel}: no files match`);
  if (files.length > 1) checkMultiFilePaths(files.map((f) => f.rel));
  return files;
}

/** A directory asked for as a file: say how to ask for what is in it. */
function hintDirectory(ctx: ServiceContext, rel: string, err: Error): Error {
  if (!(err instanceof PkgError) || err.kind !== 'not-found' || !/not a regular file/.test(err.message)) return err;
  return new PkgError('not-found', `/${rel}: is a directory; ask for /${rel}/* for its files`);
}
