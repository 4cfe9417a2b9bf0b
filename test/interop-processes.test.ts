// The interop suite's promise that every client is always stopped: on its
// timeout, and at the end of the test that started it, together with
// anything it forked.
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { procStat, startGroup } from './helpers/clients.js';
import { until } from './helpers/poll.js';

/**
 * True while a live process of the group exists. Zombies do not count: a
 * killed grandchild is reparented to PID 1, and whether (and when) that
 * reaps it depends on the container, not on us.
 */
function groupAlive(pgid: number): boolean {
  return readdirSync('/proc').some((d) => {
    if (!/^\d+$/.test(d)) return false;
    const s = procStat(d);
    return s !== null && s.pgrp === pgid && s.state !== 'Z';
  });
}

/** Polls (every 20 ms, at most 3 s) until the group is gone. */
function groupGone(pgid: number): Promise<boolean> {
  return until(3000, () => !groupAlive(pgid), 20);
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
  await until(2000, () => {
    const pid = p.commandPid();
    found = pid === undefined ? '' : comm(pid);
    return found === 'sleep';
  }, 20);
  t.equal(found, 'sleep');
  const exit = await p.stop();
  t.equal(exit.timedOut, false, 'stop() is not a timeout');
});
