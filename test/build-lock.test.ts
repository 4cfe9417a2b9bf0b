// Build locks name their holder (host, boot id, pid, the pid's start time):
// a restarted process that got the old pid back, or a holder from before a
// reboot, is never mistaken for the builder; a foreign host's lock is taken
// once its heartbeat stopped; a live holder is waited for. The clock is
// injected, so nothing here sleeps for the bounds.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BuildLocks, FOREIGN_STALE_MS, LOCK_STALE_MS, lockPathFor, procStartTime, systemLockEnv, type LockEnv } from '../src/core/build-lock.js';
import { CacheWrites } from '../src/core/cache-writes.js';
import { InfoCache } from '../src/core/info-cache.js';
import type { InfoEntry } from '../src/core/info-entry.js';
import { sha1 } from '../src/core/metainfo.js';

const me = { pid: process.pid, host: systemLockEnv.host, boot: systemLockEnv.bootId, start: systemLockEnv.startTime(process.pid) };

/** A clock that only moves when told (starting at the real time, which lock mtimes are), over the real process table. */
function clock(): LockEnv & { advance(ms: number): void } {
  let now = Date.now();
  return { ...systemLockEnv, now: () => now, advance: (ms) => void (now += ms) };
}

function setup(t: Test) {
  const dir = t.testdir({ info: {} });
  const entry = join(dir, 'info', 'e'.repeat(40));
  const lock = lockPathFor(entry);
  const write = (body: Record<string, unknown>) => writeFileSync(lock, JSON.stringify({ token: 'theirs', ...body }));
  return { dir, entry, lock, write };
}

t.test('/proc reading: our boot id and start time are known here, and the stat parser survives odd command names', async (t) => {
  t.equal(procStartTime('42 (a) b) (c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10'), '98765', 'field 22, counted from the last )');
  t.equal(procStartTime('garbage'), null);
  if (!existsSync('/proc/self/stat')) {
    t.pass('no /proc here: locks fall back to pid liveness', { skip: 'no /proc' });
    return;
  }
  t.match(me.boot, /^[0-9a-f-]{36}$/, 'boot id');
  t.match(me.start, /^\d+$/, 'start time');
  const child = spawn('sleep', ['30']);
  t.teardown(() => void child.kill());
  await new Promise((r) => child.once('spawn', r));
  t.ok(BigInt(systemLockEnv.startTime(child.pid!)!) >= BigInt(me.start!), 'a process started later has a later start time');
  t.equal(readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(' ')[21], systemLockEnv.startTime(child.pid!), 'the same field ps reads');
});

t.test('a lock naming our pid but another start time (a restarted PID 1) is taken at once', async (t) => {
  const { entry, write } = setup(t);
  write({ ...me, start: '1' });
  const l = new BuildLocks(clock()).tryLock(entry);
  t.ok(l, 'taken');
  l?.release();
});

t.test('a lock from another boot of this host is taken at once', async (t) => {
  if (!me.boot) return t.pass('no boot id here', { skip: 'no /proc/sys/kernel/random/boot_id' });
  const { entry, write } = setup(t);
  write({ ...me, boot: '00000000-0000-0000-0000-000000000000' });
  const l = new BuildLocks(clock()).tryLock(entry);
  t.ok(l, 'taken');
  l?.release();
});

t.test('a lock naming this very process that it does not hold (a failed release) is taken at once', async (t) => {
  const { entry, write } = setup(t);
  write({ ...me });
  const l = new BuildLocks(clock()).tryLock(entry);
  t.ok(l, 'taken');
  l?.release();
});

t.test('a live holder is waited for: another process on this host, and a lock this process holds', async (t) => {
  const { entry, lock, write } = setup(t);
  const child = spawn('sleep', ['30']);
  t.teardown(() => void child.kill());
  await new Promise((r) => child.once('spawn', r));
  write({ ...me, pid: child.pid, start: systemLockEnv.startTime(child.pid!) });
  const env = clock();
  const locks = new BuildLocks(env);
  t.equal(locks.tryLock(entry), null, 'held by a live process');
  env.advance(LOCK_STALE_MS - 5000);
  t.equal(locks.tryLock(entry), null, 'still, as long as its lock is younger than LOCK_STALE_MS');
  child.kill();
  await new Promise((r) => child.once('exit', r));
  const after = locks.tryLock(entry);
  t.ok(after, 'taken once that process is gone');
  t.equal(locks.tryLock(entry), null, 'and a lock this process holds is waited for too');
  t.equal(new BuildLocks(clock()).tryLock(entry), null, 'by every cache in this process');
  after!.release();
  t.notOk(existsSync(lock), 'released');
});

t.test("a foreign host's lock: waited for while its heartbeat goes on, taken after it stopped for FOREIGN_STALE_MS", async (t) => {
  const { entry, lock, write } = setup(t);
  write({ pid: 1, host: 'elsewhere', boot: 'their-boot', start: '7' });
  const env = clock();
  const locks = new BuildLocks(env);
  // Heartbeats: the holder touches its lock; time passes far beyond the bound.
  for (let i = 0; i < 6; i++) {
    const beat = new Date(env.now() - 1000);
    utimesSync(lock, beat, beat);
    t.equal(locks.tryLock(entry), null, `heartbeat ${i + 1}: waited for`);
    env.advance(FOREIGN_STALE_MS / 3);
  }
  // A last heartbeat, then it stops.
  const last = new Date(env.now() - 1000);
  utimesSync(lock, last, last);
  t.equal(locks.tryLock(entry), null, 'the last heartbeat is seen');
  env.advance(FOREIGN_STALE_MS - 1);
  t.equal(locks.tryLock(entry), null, 'just under the bound: not yet');
  env.advance(1);
  const l = locks.tryLock(entry);
  t.ok(l, 'taken at the bound, long before LOCK_STALE_MS');
  t.ok(FOREIGN_STALE_MS < LOCK_STALE_MS);
  l?.release();
});

t.test('through the info cache: a restarted holder costs no wait at all', async (t) => {
  const { dir, entry, write } = setup(t);
  mkdirSync(join(dir, 'info'), { recursive: true });
  write({ ...me, start: '1' });
  const bytes = Buffer.from('d4:name1:xe');
  const built: InfoEntry = { kind: 'single', pieceLength: 16384, serviceName: 'torrent_service', name: 'x', webSeedSuffix: '', bytes, infoHash: sha1(bytes), files: [{ rel: 'x', size: 1, mtimeNs: 1n }] };
  // waitMs 0: a lock judged live fails at once with 'busy'; only a lock judged stale lets the build run.
  const cache = new InfoCache(dir, { waitMs: 0, writes: new CacheWrites(dir, (l) => t.fail(l)) });
  const got = await cache.obtain('e'.repeat(40), () => false, async () => built);
  t.equal(got, built, 'built without waiting');
  t.ok(existsSync(entry), 'and cached');
  // The same lock with the holder's real start time: a live holder, so busy.
  write({ ...me, pid: process.ppid, start: systemLockEnv.startTime(process.ppid) });
  await t.rejects(cache.obtain('e'.repeat(40), () => false, async () => built), { message: /another process is still building/ }, 'a live holder is not taken over (busy)');
});
