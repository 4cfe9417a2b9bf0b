// The mirror's own files (--files, SPEC 3.5), so `serve --files` alone is a
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
import { allowMethods } from './respond.js';
import { resolveFiles } from './resolve-paths.js';

export async function handleFile(ctx: ServiceContext, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  if (!ctx.files) throw new PkgError('not-found', 'not found');
  allowMethods(req, ['GET', 'HEAD']);
  if (path.endsWith('/')) throw new PkgError('not-found', `${path}: no directory listings`);
  const [file] = await resolveFiles(ctx.root, [path], ctx.cacheRel);
  const segments = relative(ctx.root.real, file!.abs).split(sep);
  // Hidden files (.git, editor leftovers) are not part of a mirror, by the name they really have.
  if (segments.some((s) => s.startsWith('.'))) throw new PkgError('forbidden', `${path}: hidden files are not served`);

  let target: { root: string; urlPath: string };
  if (canLocateOpenFiles) {
    const fd = ctx.root.openFile(file!);
    res.once('close', () => closeSync(fd));
    // The type comes from the file's name; send would see only the descriptor number.
    res.setHeader('Content-Type', contentType(extname(file!.abs)) || 'application/octet-stream');
    target = { root: PROC_FD, urlPath: `/${fd}` };
  } else {
    // send takes a URL path under its root: the resolved (symlink-free) file, re-encoded.
    target = { root: ctx.root.real, urlPath: '/' + segments.map(encodeURIComponent).join('/') };
  }
  await new Promise<void>((resolve, reject) => {
    const stream = send(req, target.urlPath, { root: target.root, dotfiles: 'deny', index: false, cacheControl: false });
    stream.on('error', (err: Error & { status?: number }) => {
      if (err.status === 404) reject(new PkgError('not-found', `${path}: no such file`));
      else reject(err);
    });
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
