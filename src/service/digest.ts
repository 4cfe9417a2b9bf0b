// Digest mode (pkgtorrent-service(8), "Digest mode"), the yum-torrent conversation: GET answers a cached
// torrent or 412; POST carries the paths, checked against the digest.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PkgError } from '../core/errors.js';
import { sha1 } from '../core/metainfo.js';
import { baseUrlFor } from './base-url.js';
import { parsePathForm, readBody } from './body.js';
import type { ServiceContext } from './context.js';
import { armBuildTimeout } from './timeout.js';
import { allowMethods, sendNotCached, sendTorrent } from './respond.js';
import { checkMultiFilePaths } from '../core/service-layout.js';
import { resolveFiles, urlPathToRel } from './resolve-paths.js';

export async function handleDigest(ctx: ServiceContext, req: IncomingMessage, res: ServerResponse, digest: string): Promise<void> {
  const arrivedAt = ctx.torrents.now();
  allowMethods(req, ['GET', 'HEAD', 'POST']);
  // Validate the host before any work: its answer goes into the torrent.
  const base = baseUrlFor(req, ctx.baseUrl);
  if (req.method !== 'POST') {
    const entry = await ctx.torrents.lookup(digest, arrivedAt);
    if (!entry) return sendNotCached(req, res);
    const t = ctx.torrents.torrent(digest, entry, base, await ctx.trackers.current());
    return sendTorrent(req, res, t.bytes, t.infoHashHex);
  }
  armBuildTimeout(ctx, req, res);
  const values = parsePathForm(req, await readBody(req, ctx.limits.maxBody), ctx.limits.maxPaths);
  // Over the values as received: the client hashed its URL paths, encoded or not.
  if (sha1(values.join('\n')).toString('hex') !== digest) throw new PkgError('bad-request', 'digest does not match the paths');
  const rels = values.map(urlPathToRel);
  checkMultiFilePaths(rels);
  const files = await resolveFiles(ctx.root, rels);
  const entry = await ctx.torrents.forFiles(digest, files, 'multi', arrivedAt);
  const t = ctx.torrents.torrent(digest, entry, base, await ctx.trackers.current());
  sendTorrent(req, res, t.bytes, t.infoHashHex);
}
