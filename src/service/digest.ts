// Digest mode (pkgtorrent-service(8), "Digest mode"), the yum-torrent conversation: GET answers a cached
// torrent or 412; POST carries the paths, checked against the digest.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PkgError } from '../core/errors.js';
import type { InfoEntry } from '../core/info-entry.js';
import { sha1 } from '../core/metainfo.js';
import { baseUrlFor } from './base-url.js';
import { parsePathForm, readBody } from './body.js';
import type { ServiceContext } from './context.js';
import { armBuildTimeout } from './timeout.js';
import { allowMethods, answerTorrent, sendNotCached } from './respond.js';
import { checkMultiFilePaths } from '../core/service-layout.js';
import { resolveFiles, urlPathToRel } from './resolve-paths.js';
import { builtBy } from './metrics.js';
import { ServiceResponse } from './service-response.js';

/**
 * A cached GET whose entry is fresh in memory (or checked at once, inside
 * the revalidation window) and whose trackers need no re-read is answered
 * synchronously, with no promise at all: that is most requests to a busy
 * mirror. Anything else returns the promise of its answer.
 */
export function handleDigest(ctx: ServiceContext, req: IncomingMessage, res: ServerResponse, digest: string): Promise<void> | void {
  const arrivedAt = ctx.torrents.now();
  allowMethods(req, DIGEST_METHODS);
  // Validate the host before any work: its answer goes into the torrent.
  const base = baseUrlFor(req, ctx.baseUrl);
  if (req.method === 'POST') return handlePost(ctx, req, res, digest, base, arrivedAt);
  const found = ctx.torrents.lookup(digest, arrivedAt, res instanceof ServiceResponse ? res : undefined);
  const trackers = ctx.trackers.ready();
  if (found instanceof Promise || trackers === null) return answerGet(ctx, req, res, digest, base, found);
  if (!found) return sendNotCached(req, res);
  return answerTorrent(ctx, req, res, found, ctx.torrents.torrent(digest, found, base, trackers));
}

const DIGEST_METHODS = ['GET', 'HEAD', 'POST'];

async function answerGet(
  ctx: ServiceContext,
  req: IncomingMessage,
  res: ServerResponse,
  digest: string,
  base: string,
  found: InfoEntry | null | Promise<InfoEntry | null>,
): Promise<void> {
  const entry = await found;
  if (!entry) return sendNotCached(req, res);
  await answerTorrent(ctx, req, res, entry, ctx.torrents.torrent(digest, entry, base, await ctx.trackers.current()));
}

async function handlePost(ctx: ServiceContext, req: IncomingMessage, res: ServerResponse, digest: string, base: string, arrivedAt: number): Promise<void> {
  armBuildTimeout(ctx, req, res);
  const values = parsePathForm(req, await readBody(req, ctx.limits.maxBody), ctx.limits.maxPaths);
  // Over the values as received: the client hashed its URL paths, encoded or not.
  if (sha1(values.join('\n')).toString('hex') !== digest) throw new PkgError('bad-request', 'digest does not match the paths');
  const rels = values.map(urlPathToRel);
  checkMultiFilePaths(rels);
  const files = await resolveFiles(ctx.root, rels);
  const entry = await ctx.torrents.forFiles(digest, files, 'multi', arrivedAt, builtBy(res));
  await answerTorrent(ctx, req, res, entry, ctx.torrents.torrent(digest, entry, base, await ctx.trackers.current()));
}
