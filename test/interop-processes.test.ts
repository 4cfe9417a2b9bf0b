// The interop suite's promise that every client is always stopped: on its
// timeout, and at the end of the test that started it, together with
// anything it forked.
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { startGroup } from './helpers/clients.js';

/**
 * True while a live process of the group exists. Zombies do not count: a
 * killed grandchild is reparented to PID 1, and whether (and when) that
 * reaps it depends on the container, not on us.
 */
function groupAlive(pgid: number): boolean {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      // After the ')' closing comm: state ppid pgrp ...
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) === pgid && state !== 'Z') return true;
    } catch {
      // exited meanwhile
    }
  }
  return false;
}

/** Polls (every 20 ms, at most 3 s) until the group is gone. */
async function groupGone(pgid: number): Promise<boolean> {
  const end = Date.now() + 3000;
  while (Date.now() < end) {
    if (!groupAlive(pgid)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

// A shell that forks a long sleep and waits: the grandchild must die too.
const FORKING = ['-c', 'sleep 60 & echo started; wait'];

t.test('a timeout kills the whole process group', async (t) => {
  const started = Date.now();
  let ready = false;
  const p = startGroup(t, 'sh', FORKING, { timeoutMs: 500, onLine: (l) => (ready ||= l === 'started') });
  const exit = await p.exited;
  t.ok(ready, 'the command ran');
  t.ok(exit.timedOut, 'reported as timed out');
  t.ok(Date.now() - started < 5000, 'ended near its timeout, not at the sleep');
  t.ok(await groupGone(p.child.pid!), 'the forked sleep is gone as well');
});

let leftPid = 0;
t.test('the end of the test stops a process left running', async (t) => {
  const p = startGroup(t, 'sh', FORKING, { timeoutMs: 60_000 });
  leftPid = p.child.pid!;
  t.ok(groupAlive(leftPid), 'running when the test ends');
});

t.test('…and it is gone afterwards', async (t) => {
  t.ok(leftPid > 0 && (await groupGone(leftPid)), 'process group stopped by t.teardown');
});

t.test('commandPid is the command under the timeout wrapper', async (t) => {
  const p = startGroup(t, 'sleep', ['60'], { timeoutMs: 10_000 });
  // The wrapper forks and execs it at once, but not synchronously: poll
  // briefly until the child is there and is `sleep`.
  const comm = (pid: number) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      return '';
    }
  };
  let found = '';
  for (let i = 0; i < 100 && found !== 'sleep'; i++) {
    const pid = p.commandPid();
    found = pid === undefined ? '' : comm(pid);
    if (found !== 'sleep') await new Promise((r) => setTimeout(r, 20));
  }
  t.equal(found, 'sleep');
  const exit = await p.stop();
  t.equal(exit.timedOut, false, 'stop() is not a timeout');
});
