/**
 * At most `limit` async tasks at once, first come first served: for work
 * whose items appear as it goes (a directory walk); eachLimit below is the
 * same bound over a list known up front, without a promise per item.
 */
export class Limiter {
  private active = 0;
  private waiting: Array<() => void> = [];
  constructor(private readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

/**
 * Runs `fn` over items with at most `limit` calls in flight; resolves when
 * all are done, or rejects with the first failure (the calls already started
 * still run to their end).
 */
export async function eachLimit<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/**
 * Calls `fn` on every item, letting the event loop run (setImmediate) after
 * each `perTurn` calls have started, then waits for all: the first failure
 * rejects, and no batch starts after one. For work whose start is
 * synchronous file-system calls (see MirrorRoot.file): a request for
 * thousands of files then never holds up the other requests for more than
 * one batch, and a bad path early in a long list costs little.
 */
export async function inTurns<T, R>(items: readonly T[], perTurn: number, fn: (item: T, index: number) => R | Promise<R>): Promise<R[]> {
  const started: Promise<R>[] = [];
  let failed = false;
  for (let i = 0; i < items.length; i++) {
    if (i > 0 && i % perTurn === 0) {
      await new Promise((r) => setImmediate(r));
      if (failed) break;
    }
    const p = (async () => fn(items[i]!, i))();
    // Handled at once, so a failure while we yield is not an unhandled rejection; Promise.all still reports it.
    p.catch(() => (failed = true));
    started.push(p);
  }
  return Promise.all(started);
}
