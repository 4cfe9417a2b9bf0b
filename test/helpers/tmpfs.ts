// A tmpfs at a fresh mount point for tests that need a file system of
// their own (full, or remounted read-only), unmounted in teardown whatever
// happens.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';

/**
 * A tmpfs of `size`. Null when mounting is impossible here (not root, no
 * CAP_SYS_ADMIN): then the test is skipped loudly, or failed with CI set.
 */
export function tmpfs(t: Test, size: string): string | null {
  const dir = mkdtempSync(join(tmpdir(), 'pkgtorrent-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0755`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (e) {
    rmdirSync(dir);
    const msg = `cannot mount a tmpfs (needs root and CAP_SYS_ADMIN): ${(e as { stderr?: Buffer }).stderr?.toString().trim() || (e as Error).message}`;
    if (process.env.CI) t.fail(`${msg} (required when CI is set)`);
    else {
      process.stderr.write(`# SKIP ${msg}\n`);
      t.pass(msg, { skip: msg });
    }
    return null;
  }
  t.teardown(() => {
    // Lazy: a server still stopping cannot keep the mount point busy.
    execFileSync('umount', ['-l', dir]);
    rmdirSync(dir);
  });
  return dir;
}
