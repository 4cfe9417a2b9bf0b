// Errors a user can act on. Every failure that can reach a user is a PkgError
// with a kind; the CLI maps the kind to an exit code and the service maps it to
// an HTTP status, so no layer below them needs to know which one is calling.

export type ErrorKind =
  | 'usage' // bad flags or arguments: exit 2, HTTP 400
  | 'bad-request' // malformed input from a client: HTTP 400
  | 'not-found' // a path or glob that names nothing: HTTP 404
  | 'forbidden' // a path that would leave the root: HTTP 403
  | 'too-large' // over a configured cap: HTTP 413
  | 'busy' // hashing queue full: HTTP 503
  | 'changed' // a file changed while it was read: HTTP 503, asking again will succeed
  | 'io' // the file system failed (a broken disk, no descriptors left): HTTP 503, worth retrying
  | 'exists'; // refusing to overwrite

export class PkgError extends Error {
  override readonly name = 'PkgError';
  constructor(
    readonly kind: ErrorKind,
    message: string,
  ) {
    super(message);
  }

  get exitCode(): 1 | 2 {
    return this.kind === 'usage' ? 2 : 1;
  }

  get httpStatus(): number {
    switch (this.kind) {
      case 'usage':
      case 'bad-request':
        return 400;
      case 'not-found':
        return 404;
      case 'forbidden':
        return 403;
      case 'too-large':
        return 413;
      case 'busy':
      case 'changed':
      case 'io':
        return 503;
      default:
        return 500;
    }
  }
}

export const usageError = (message: string) => new PkgError('usage', message);

/** Turns a Node file-system error into a one-line PkgError naming the path. */
export function fsError(err: unknown, path: string): PkgError {
  if (err instanceof PkgError) return err;
  const e = err as NodeJS.ErrnoException;
  switch (e?.code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return new PkgError('not-found', `${path}: no such file or directory`);
    case 'EACCES':
    case 'EPERM':
      return new PkgError('forbidden', `${path}: permission denied`);
    case 'ENAMETOOLONG':
      return new PkgError('bad-request', `${path}: name too long`);
    case 'EISDIR':
      return new PkgError('io', `${path}: is a directory`);
    case 'ELOOP':
      return new PkgError('forbidden', `${path}: too many symbolic links`);
    default:
      return new PkgError('io', `${path}: ${e?.message ?? String(err)}`);
  }
}
