// Whether the cache dir can be written right now. A cache exists to save
// work, so a cache that cannot take writes (a read-only or full file system,
// a quota, a permission, a failing disk) must never fail a request: the
// caller builds in memory and answers, nothing is cached, and the operator
// reads one line when the condition starts and one when it ends, not one per
// request.
import { errnoText } from './errors.js';

/** Errors that mean "the cache dir cannot be written", not "this entry is bad". */
const UNAVAILABLE = new Set(['EROFS', 'ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EIO']);

export function isCacheUnavailable(e: unknown): e is NodeJS.ErrnoException {
  return e instanceof Error && UNAVAILABLE.has((e as NodeJS.ErrnoException).code ?? '');
}

/** "EROFS: read-only file system": the code operators search for, and our words for it. */
function reason(e: NodeJS.ErrnoException): string {
  return e.code ? `${e.code}: ${errnoText(e)}` : errnoText(e);
}

export interface CacheWritesOptions {
  /**
   * While the cache is unavailable, writes are skipped and tried again at
   * most this often (one failing write every few seconds costs nothing, and
   * a file system that is nearly full cannot make the log flap faster).
   */
  retryMs?: number;
  now?: () => number;
  /**
   * Why the dir could not be written when it was opened (CacheDir of
   * openCacheDir), so that a service starting on a read-only mount or a
   * directory it cannot write says so at once rather than at its first miss.
   */
  unwritable?: NodeJS.ErrnoException | null;
}

export const CACHE_RETRY_MS = 5000;

export class CacheWrites {
  private down: { retryAt: number } | null = null;
  private readonly retryMs: number;
  private readonly now: () => number;

  constructor(
    readonly dir: string,
    private readonly log: (line: string) => void,
    opts: CacheWritesOptions = {},
  ) {
    this.retryMs = opts.retryMs ?? CACHE_RETRY_MS;
    this.now = opts.now ?? Date.now;
    if (isCacheUnavailable(opts.unwritable)) this.fail(opts.unwritable);
  }

  get available(): boolean {
    return this.down === null;
  }

  /**
   * Runs one cache write. Returns its result, or undefined when it was not
   * done: skipped while the cache is unavailable, or failed. A write that
   * succeeds ends an unavailable spell unless `recovers` is false (a lock
   * file of a few bytes fits where an entry may not).
   */
  attempt<T>(what: string, write: () => T, recovers = true): T | undefined {
    if (this.down && this.now() < this.down.retryAt) return undefined;
    try {
      const r = write();
      if (recovers && this.down) {
        this.down = null;
        this.log(`cache dir ${this.dir} can be written again: caching resumed`);
      }
      return r;
    } catch (e) {
      if (isCacheUnavailable(e)) this.fail(e);
      else this.log(`${what}: cannot write cache entry: ${(e as Error).message}`);
      return undefined;
    }
  }

  private fail(e: Error): void {
    if (!this.down) {
      this.log(`cache dir ${this.dir} cannot be written (${reason(e)}): answering without caching until it can`);
    }
    this.down = { retryAt: this.now() + this.retryMs };
  }
}
