// The check made on the opened file, not on its path: a directory swapped for
// a symlink leading out of the root between resolving a file and opening it
// must not make us read (serve or hash) the file outside.
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { closeSync, readdirSync, renameSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { HashPool } from '../src/core/hasher.js';
import { canLocateOpenFiles, openInside } from '../src/core/open-inside.js';
import { hashFile } from '../src/core/piece-store.js';
import { MirrorRoot } from '../src/core/root.js';

const openFds = () => readdirSync('/proc/self/fd').length;

/** Without /proc the check cannot be made (and is documented as skipped); Linux always has it. */
function noProc(t: Test): boolean {
  if (canLocateOpenFiles) return false;
  t.pass('no /proc/self/fd here', { skip: 'no /proc/self/fd' });
  return true;
}

/** A root with pub/a.rpm, and a look-alike pub/a.rpm outside it. */
function layout(t: Test) {
  const dir = t.testdir({
    root: { pub: { 'a.rpm': randomBytes(70_000) } },
    outside: { pub: { 'a.rpm': randomBytes(70_000) } },
  });
  return { dir, root: join(dir, 'root'), outside: join(dir, 'outside') };
}

/** Replaces root/pub with a symlink to outside/pub, as an attacker with write access inside the root could. */
function swapPub(root: string, outside: string): void {
  renameSync(join(root, 'pub'), join(root, 'pub-old'));
  symlinkSync(join(outside, 'pub'), join(root, 'pub'));
}

t.test('openInside: a file under the directory opens, one reached through a symlink out does not', async (t) => {
  if (noProc(t)) return;
  const { root, outside } = layout(t);
  const real = (await MirrorRoot.open(root)).real;
  symlinkSync(join(outside, 'pub'), join(root, 'out'));
  const fd = openInside(join(root, 'pub/a.rpm'), real);
  t.type(fd, 'number');
  closeSync(fd!);
  const before = openFds();
  t.equal(openInside(join(root, 'out/a.rpm'), real), null, 'refused');
  t.equal(openFds(), before, 'and nothing left open');
  t.throws(() => openInside(join(root, 'pub/missing.rpm'), real), { code: 'ENOENT' });
});

t.test('MirrorRoot.openFile refuses a file whose directory was swapped after it was resolved', async (t) => {
  if (noProc(t)) return;
  const { root, outside } = layout(t);
  const mirror = await MirrorRoot.open(root);
  const file = mirror.file('pub/a.rpm');
  swapPub(root, outside);
  t.throws(() => mirror.openFile(file), { name: 'PkgError', kind: 'forbidden', message: 'pub/a.rpm: resolves outside the root' });
  // Resolving again sees the symlink and refuses at once.
  t.throws(() => mirror.file('pub/a.rpm'), { name: 'PkgError', kind: 'forbidden' });
});

for (const inline of [false, true]) {
  t.test(`hashing (${inline ? 'inline lane' : 'worker'}) refuses a file swapped out of the root after it was resolved`, async (t) => {
    if (noProc(t)) return;
    const { root, outside } = layout(t);
    const mirror = await MirrorRoot.open(root);
    const pool = new HashPool(1, { inline });
    t.teardown(() => pool.close());
    const file = mirror.file('pub/a.rpm');
    swapPub(root, outside);
    await t.rejects(hashFile(pool, file, 16384), { name: 'PkgError', kind: 'changed', message: /^pub\/a\.rpm: .*outside the root/ });
  });
}
