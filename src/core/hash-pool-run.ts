// One hash pool for one command run, closed however the run ends, and
// stopped by the command's abort signal (SIGINT, SIGTERM).
import { PkgError } from './errors.js';
import { HashPool } from './hasher.js';

/**
 * The calling thread hashes too and starts at once; workers start only when
 * there is more than one task, so a small run never waits for one to boot
 * and then to be terminated.
 */
export async function withHashPool<T>(jobs: number, signal: AbortSignal | undefined, fn: (pool: HashPool) => Promise<T>): Promise<T> {
  const pool = new HashPool(jobs, { inline: true });
  const onAbort = () => void pool.close();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const result = await fn(pool);
    if (signal?.aborted) throw interrupted();
    return result;
  } catch (e) {
    if (signal?.aborted) throw interrupted();
    throw e;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    await pool.close();
  }
}

const interrupted = () => new PkgError('io', 'interrupted');
