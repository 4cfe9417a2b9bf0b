// Simple mode (pkgtorrent-service(8), "Simple mode"): a path under the root, possibly a glob. One match
// is a single-file torrent cached under `<sha1(path)>_s`; several make a
// multi-file torrent cached under the digest a yum client would use for the
// same paths, so both kinds of client share it.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { sha1 } from '../core/metainfo.js';
import { checkRelPath, type MirrorFile } from '../core/root.js';
import { baseUrlFor } from './base-url.js';
import type { ServiceContext } from './context.js';
import { armBuildTimeout } from './timeout.js';
import { allowMethods, answerTorrent } from './respond.js';
import { checkMultiFilePaths } from '../core/service-layout.js';
import { filesForPath } from '../core/service-paths.js';
import { builtBy } from './metrics.js';

export async function handleSimple(ctx: ServiceContext, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  allowMethods(req, ['GET', 'HEAD']);
  const base = baseUrlFor(req, ctx.baseUrl);
  armBuildTimeout(ctx, req, res);
  const rel = checkRelPath(path);
  const statedAt = ctx.torrents.now();
  const files = await matchFiles(ctx, rel, res);
  const key =
    files.length === 1 ? `${sha1('/' + files[0]!.rel).toString('hex')}_s` : sha1(files.map((f) => '/' + f.rel).join('\n')).toString('hex');
  const entry = await ctx.torrents.forFiles(key, files, files.length === 1 ? 'single' : 'multi', statedAt, builtBy(res));
  await answerTorrent(ctx, req, res, entry, ctx.torrents.torrent(key, entry, base, await ctx.trackers.current()));
}

async function matchFiles(ctx: ServiceContext, rel: string, res: ServerResponse): Promise<MirrorFile[]> {
  // A glob's walk stops when the client goes away or the build timeout answers it.
  const gone = new AbortController();
  res.once('close', () => gone.abort());
  const files = await filesForPath(ctx.root, rel, { maxMatches: ctx.limits.maxGlobMatches, signal: gone.signal });
  if (files.length > 1) checkMultiFilePaths(files.map((f) => f.rel));
  return files;
}
