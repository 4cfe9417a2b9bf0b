// A sensor for "nothing here was read": inotifywait reports every open and
// read of a file or listing of a directory under a path, which an atime
// check cannot see on a noatime or relatime mount.
import { spawn } from 'node:child_process';
import type { Test } from 'tap';

/**
 * Watches `path` (recursively) for open and access events until the test
 * ends; resolves once the watches are set, with a reader of the events seen
 * so far ("<path> <EVENTS>" lines). Call need(t, 'inotifywait') first.
 */
export async function watchOpens(t: Test, path: string): Promise<() => string> {
  const child = spawn('inotifywait', ['-m', '-r', '-e', 'open,access', '--format', '%w%f %e', path], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => {
    child.kill();
  });
  let events = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (events += s));
  await new Promise<void>((resolve, reject) => {
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => {
      err += s;
      if (err.includes('Watches established')) resolve();
    });
    child.on('exit', () => reject(new Error(`inotifywait exited: ${err}`)));
  });
  return () => events;
}
