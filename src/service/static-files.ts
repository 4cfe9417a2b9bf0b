// The mirror's own files (--files, see pkgtorrent-service(8)), so `serve --files` alone is a
// mirror whose web seeds work. `send` does Range, HEAD, ETag/Last-Modified
// and conditional requests; we only decide which file, through MirrorRoot so
// that `..`, NUL and symlinks leading outside the root never reach it.
//
// The file is opened here and checked where it is as opened (see
// MirrorRoot.openFile), then `send` is given /proc/self/fd/N: opening that
// reaches the same file, whatever happens to its path meanwhile, so a
// directory swapped for a symlink after the check cannot redirect the read.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { closeSync } from 'node:fs';
import { extname, relative, sep } from 'node:path';
import { contentType } from 'mime-types';
import send from 'send';
import { PkgError } from '../core/errors.js';
import { PROC_FD, canLocateOpenFiles } from '../core/open-inside.js';
import { isByteZero } from './byte-zero.js';
import type { ServiceContext } from './context.js';
import { ClientHttpError, allowMethods } from './respond.js';
import { resolveFiles } from './resolve-paths.js';

export async function handleFile(ctx: ServiceContext, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  if (!ctx.files) throw new PkgError('not-found', 'not found');
  allowMethods(req, ['GET', 'HEAD']);
  if (path.endsWith('/')) throw new PkgError('not-found', `${path}: no directory listings`);
  // The root refuses hidden names, the cache and anything outside, on the resolved path.
  const [file] = await resolveFiles(ctx.root, [path]);

  let target: { root: string; urlPath: string };
  if (canLocateOpenFiles) {
    const fd = ctx.root.openFile(file!);
    res.once('close', () => closeSync(fd));
    // The type comes from the file's name; send would see only the descriptor number.
    res.setHeader('Content-Type', contentType(extname(file!.abs)) || 'application/octet-stream');
    target = { root: PROC_FD, urlPath: `/${fd}` };
  } else {
    // send takes a URL path under its root: the resolved (symlink-free) file, re-encoded.
    const segments = relative(file!.root, file!.abs).split(sep);
    target = { root: file!.root, urlPath: '/' + segments.map(encodeURIComponent).join('/') };
  }
  await new Promise<void>((resolve, reject) => {
    const stream = send(req, target.urlPath, {
      root: target.root,
      dotfiles: ctx.root.dotfiles ? 'allow' : 'deny',
      index: false,
      cacheControl: false,
    });
    stream.on('error', (err: Error & { status?: number; headers?: Record<string, string> }) => reject(sendFailure(path, err)));
    stream.on('directory', () => reject(new PkgError('not-found', `${path}: is a directory`)));
    // Headers are set, not yet sent. aria2 would otherwise wait for the idle
    // timeout after a one-byte file that ends a piece (see byte-zero.ts).
    stream.on('stream', () => {
      if (isByteZero(res.statusCode, Number(res.getHeader('Content-Length')), res.getHeader('Content-Range'))) res.setHeader('Connection', 'close');
    });
    stream.on('end', () => resolve());
    res.on('close', () => resolve());
    stream.pipe(res);
  });
}

/**
 * send's refusals as ours: a failed precondition (If-Match,
 * If-Unmodified-Since) is 412, a range past the end 416 with the
 * Content-Range send prepared; a file gone between the check and the read is
 * 404. Anything else is a fault of ours and stays a 500.
 */
function sendFailure(path: string, err: Error & { status?: number; headers?: Record<string, string> }): Error {
  switch (err.status) {
    case 404:
      return new PkgError('not-found', `${path}: no such file`);
    case 412:
      return new ClientHttpError(412, `${path}: precondition failed`);
    case 416:
      return new ClientHttpError(416, `${path}: range not satisfiable`, err.headers ?? {});
    default:
      if (err.status !== undefined && err.status >= 400 && err.status < 500) return new ClientHttpError(err.status, `${path}: ${err.message}`);
      return err;
  }
}
