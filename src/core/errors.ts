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

/**
 * A finer reason within a kind, for callers that act on it (hash adds a hint
 * to a refusal of a link out of the root), so none has to match message text.
 */
export type ErrorReason = 'outside-root' | LimitReason;

/** A request refused by a bound of the service, named by its setting (serve's metrics count them by it). */
export type LimitReason = 'queue-limit' | 'max-body' | 'max-paths' | 'max-glob-matches' | 'request-timeout';

export const LIMIT_REASONS: readonly LimitReason[] = ['queue-limit', 'max-body', 'max-paths', 'max-glob-matches', 'request-timeout'];

export class PkgError extends Error {
  override readonly name = 'PkgError';
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly reason?: ErrorReason,
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

// Messages said in more than one place: one constructor each, so every caller
// says the same thing with the same kind.

/** A path that leads (by symbolic link) out of the root and the allowed trees. */
export const outsideRoot = (rel: string) => new PkgError('forbidden', `${rel}: resolves outside the root`, 'outside-root');
/** A dot-file or a path through a dot-directory, without --dotfiles. */
export const hiddenFile = (rel: string) => new PkgError('forbidden', `${rel}: hidden files are not part of the mirror`);
/** The client went away or the service is stopping: the work is abandoned. */
export const requestCancelled = () => new PkgError('busy', 'request cancelled');
/** A POST body longer than max-body. */
export const bodyTooLarge = (maxBytes: number) => new PkgError('too-large', `request body over ${maxBytes} bytes`, 'max-body');

/** What the system said, in the words a user reads; Node's own message (with an absolute path) only when we know no better. */
const ERRNO_TEXT: Record<string, string> = {
  ENOENT: 'no such file or directory',
  ENOTDIR: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'is a directory',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'name too long',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EIO: 'I/O error',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in the system',
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found (no such name)',
  EAI_AGAIN: 'host not found (DNS not answering)',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'host unreachable',
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'no such local address',
};

/** The one errno-to-text rule: "permission denied" rather than "EACCES: permission denied, open '/abs/path'". */
export function errnoText(err: unknown): string {
  if (err instanceof PkgError) return err.message;
  const e = err as NodeJS.ErrnoException | undefined;
  return (e?.code !== undefined ? ERRNO_TEXT[e.code] : undefined) ?? e?.message ?? String(err);
}

/** Turns a Node file-system error into a one-line PkgError naming the path. */
export function fsError(err: unknown, path: string): PkgError {
  if (err instanceof PkgError) return err;
  const text = `${path}: ${errnoText(err)}`;
  switch ((err as NodeJS.ErrnoException)?.code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return new PkgError('not-found', text);
    case 'EACCES':
    case 'EPERM':
    case 'ELOOP':
      return new PkgError('forbidden', text);
    case 'ENAMETOOLONG':
      return new PkgError('bad-request', text);
    default:
      return new PkgError('io', text);
  }
}
