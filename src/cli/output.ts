// Noticing that stdout failed (a closed pipe, a full disk): a stream reports
// that as an 'error' event, which unheard would crash the process with a
// stack trace, and a command that wrote its result has no other way to know.
import type { OutStream } from './env.js';

export interface OutputWatch {
  /** True once the stream has failed. */
  failed(): boolean;
  /** After every write so far has been tried: the failure, if any. */
  settled(): Promise<NodeJS.ErrnoException | null>;
}

export function watchOutput(stream: OutStream): OutputWatch {
  let failure: NodeJS.ErrnoException | null = null;
  const onError = (e: NodeJS.ErrnoException) => {
    failure ??= e;
  };
  stream.on('error', onError);
  return {
    failed: () => failure !== null,
    async settled() {
      // An empty write's callback runs after the writes queued before it.
      if (!failure && !stream.destroyed) await new Promise<void>((resolve) => stream.write('', () => resolve()));
      // The 'error' event follows the failed write's callback by a tick.
      await new Promise((resolve) => setImmediate(resolve));
      stream.off('error', onError);
      return failure;
    },
  };
}
