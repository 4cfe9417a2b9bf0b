// The mirror's own files (--files, SPEC 3.5), so `serve --files` alone is a
// mirror whose web seeds work. `send` does Range, HEAD, ETag/Last-Modified
// and conditional requests; we only decide which file, through MirrorRoot so
// that `..`, NUL and symlinks leading outside the root never reach it.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { relative, sep } from 'node:path';
import send from 'send';
import { PkgError } from '../core/errors.js';
import type { ServiceContext } from './context.js';
import { allowMethods } from './respond.js';
import { resolveFiles } from './resolve-paths.js';

export async function handleFile(ctx: ServiceContext, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  if (!ctx.files) throw new PkgError('not-found', 'not found');
  allowMethods(req, ['GET', 'HEAD']);
  if (path.endsWith('/')) throw new PkgError('not-found', `${path}: no directory listings`);
  const [file] = await resolveFiles(ctx.root, [path], ctx.cacheRel);
  // send takes a URL path under its root: the resolved (symlink-free) file, re-encoded.
  const urlPath = '/' + relative(ctx.root.real, file!.abs).split(sep).map(encodeURIComponent).join('/');
  await new Promise<void>((resolve, reject) => {
    const stream = send(req, urlPath, {
      root: ctx.root.real,
      // Hidden files (.git, editor leftovers) are not part of a mirror.
      dotfiles: 'deny',
      index: false,
      cacheControl: false,
    });
    stream.on('error', (err: Error & { status?: number }) => {
      if (err.status === 403) reject(new PkgError('forbidden', `${path}: hidden files are not served`));
      else if (err.status === 404) reject(new PkgError('not-found', `${path}: no such file`));
      else reject(err);
    });
    stream.on('directory', () => reject(new PkgError('not-found', `${path}: is a directory`)));
    stream.on('end', () => resolve());
    res.on('close', () => resolve());
    stream.pipe(res);
  });
}
