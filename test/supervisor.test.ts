// The cluster supervisor of `serve --workers N`: stops asked for at any moment
// of start-up, the bounded wait and the kill after it, replacement of a worker
// that dies, a failed start, and the worker's side of the stop protocol. The
// races run in-process against a fake cluster with a hand-driven clock; the
// real binary is checked for the signals and for workers left behind.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { PkgError } from '../src/core/errors.js';
import {
  ASK_MESSAGE,
  ASK_TIMEOUT_MS,
  READY_MESSAGE,
  REPLY_MESSAGE,
  STOP_MESSAGE,
  answerAsks,
  stopRequested,
  supervise,
  type AskMessage,
  type Workers,
  type ClusterPrimary,
  type ListenAddress,
  type PrimaryLink,
  type WorkerEvents,
  type WorkerProcess,
} from '../src/cli/supervisor.js';
import { BIN, nodeCommand } from './helpers/cli.js';
import { procStat } from './helpers/clients.js';
import { until } from './helpers/poll.js';

/** Lets callbacks queued by the fake (as IPC would deliver them) run. */
const settle = () => new Promise((r) => setImmediate(r));

/** A worker process that does only what the test tells it; `obeys` exits on STOP. */
class FakeWorker implements WorkerProcess {
  sent: string[] = [];
  asks: AskMessage[] = [];
  killed = false;
  exited = false;
  obeys = true;
  constructor(
    readonly pid: number,
    private readonly events: WorkerEvents,
  ) {}
  send(message: string | AskMessage): void {
    if (this.exited) return;
    if (typeof message !== 'string') return void this.asks.push(message);
    this.sent.push(message);
    if (message === STOP_MESSAGE && this.obeys) setImmediate(() => this.exit(0, null));
  }
  kill(): void {
    this.killed = true;
    setImmediate(() => this.exit(null, 'SIGKILL'));
  }
  /** Started: listens and tells the primary so, as serve.ts does. */
  ready(port = 8080): void {
    this.events.listening({ address: '127.0.0.1', port, addressType: 4 });
    this.events.message(READY_MESSAGE);
  }
  message(m: unknown): void {
    this.events.message(m);
  }
  exit(code: number | null, signal: string | null): void {
    if (this.exited) return;
    this.exited = true;
    this.events.exit(code, signal);
  }
}

class FakeCluster implements ClusterPrimary {
  forks: FakeWorker[] = [];
  fork(events: WorkerEvents): FakeWorker {
    const w = new FakeWorker(1000 + this.forks.length, events);
    this.forks.push(w);
    return w;
  }
}

/** A clock the test advances: timers fire only when told. */
class FakeClock {
  timers: Array<{ ms: number; fn: () => void; cancelled: boolean }> = [];
  after = (ms: number, fn: () => void) => {
    const timer = { ms, fn, cancelled: false };
    this.timers.push(timer);
    return () => void (timer.cancelled = true);
  };
  fire(): void {
    for (const timer of this.timers.splice(0)) if (!timer.cancelled) timer.fn();
  }
}

function start(workers: number) {
  const cluster = new FakeCluster();
  let handle: Workers | null = null;
  const clock = new FakeClock();
  const controller = new AbortController();
  const log: string[] = [];
  const listening: ListenAddress[] = [];
  let outcome: 'running' | 'resolved' | Error = 'running';
  const done = supervise({
    cluster,
    workers,
    signal: controller.signal,
    log: (line) => log.push(line),
    onListening: (a) => listening.push(a),
    graceMs: 15_000,
    after: clock.after,
    onWorkers: (w) => (handle = w),
  }).then(
    () => void (outcome = 'resolved'),
    (e: Error) => void (outcome = e),
  );
  return { cluster, clock, controller, log, listening, done, outcome: () => outcome, workers: () => handle! };
}

t.test('a stop asked for while a worker is still starting reaches it once it listens', async (t) => {
  const s = start(2);
  const [a, b] = s.cluster.forks;
  a!.ready();
  s.controller.abort();
  t.same(a!.sent, [STOP_MESSAGE], 'the ready worker is asked at once');
  t.same(b!.sent, [], 'nothing is sent to a worker that could not hear it yet');
  await settle();
  t.equal(s.outcome(), 'running', 'the primary waits for the worker still starting');
  b!.ready();
  t.same(b!.sent, [STOP_MESSAGE], 'asked as soon as it is ready');
  await s.done;
  t.equal(s.outcome(), 'resolved');
  t.equal(s.cluster.forks.length, 2, 'no worker is started after the stop');
  t.notOk(a!.killed || b!.killed, 'nothing was killed');
  t.same(s.log, []);
});

t.test('a stop before any worker is ready: those that never get ready are killed after the grace', async (t) => {
  const s = start(2);
  s.controller.abort();
  t.same(
    s.cluster.forks.map((w) => w.sent),
    [[], []],
  );
  t.same(
    s.clock.timers.map((x) => x.ms),
    [15_000],
    'one bounded wait',
  );
  s.clock.fire();
  await s.done;
  t.equal(s.outcome(), 'resolved');
  t.same(
    s.cluster.forks.map((w) => w.killed),
    [true, true],
  );
  t.same(s.log, ['worker 1000 did not stop within 15 s: killing it', 'worker 1001 did not stop within 15 s: killing it']);
});

t.test('the wait is bounded: a worker ignoring STOP is killed, one that stopped is not', async (t) => {
  const s = start(2);
  const [a, b] = s.cluster.forks;
  a!.ready();
  b!.ready();
  b!.obeys = false;
  s.controller.abort();
  await settle();
  t.ok(a!.exited, 'the obedient worker stopped by itself');
  t.equal(s.outcome(), 'running');
  s.clock.fire();
  await s.done;
  t.equal(s.outcome(), 'resolved');
  t.notOk(a!.killed);
  t.ok(b!.killed, 'the other was killed when the grace ran out');
  t.same(s.log, ['worker 1001 did not stop within 15 s: killing it']);
});

t.test('all workers stopping in time cancels the kill', async (t) => {
  const s = start(3);
  for (const w of s.cluster.forks) w.ready();
  s.controller.abort();
  await s.done;
  t.equal(s.outcome(), 'resolved');
  t.same(
    s.clock.timers.map((x) => x.cancelled),
    [true],
  );
  t.notOk(s.cluster.forks.some((w) => w.killed));
});

t.test('the URL is announced once, from the first worker that listens', async (t) => {
  const s = start(2);
  s.cluster.forks[1]!.ready(9001);
  s.cluster.forks[0]!.ready(9001);
  t.same(s.listening, [{ address: '127.0.0.1', port: 9001, addressType: 4 }]);
  s.controller.abort();
  await s.done;
});

t.test('a worker that dies while serving is replaced; a second stop signal changes nothing', async (t) => {
  const s = start(2);
  const [a, b] = s.cluster.forks;
  a!.ready();
  b!.ready();
  a!.exit(null, 'SIGSEGV');
  t.equal(s.cluster.forks.length, 3, 'a replacement was forked');
  t.same(s.log, ['worker 1000 exited (SIGSEGV); starting another']);
  const c = s.cluster.forks[2]!;
  s.controller.abort();
  s.controller.abort();
  t.same(b!.sent, [STOP_MESSAGE], 'STOP sent once');
  t.same(c.sent, []);
  c.ready();
  await s.done;
  t.equal(s.outcome(), 'resolved');
  t.equal(s.cluster.forks.length, 3, 'nothing forked during the stop');
  t.same(c.sent, [STOP_MESSAGE]);
});

t.test('a worker failing to start stops the others and fails, instead of forking it again', async (t) => {
  const s = start(3);
  const [a, b, c] = s.cluster.forks;
  a!.ready();
  b!.exit(1, null);
  t.same(a!.sent, [STOP_MESSAGE], 'the serving worker is stopped');
  c!.exit(1, null);
  await s.done;
  const e = s.outcome();
  t.ok(e instanceof PkgError, 'a typed error: one line, exit 1');
  t.equal((e as PkgError).message, 'worker 1001 failed to start (exit 1): stopping');
  t.equal(s.cluster.forks.length, 3, 'no worker forked again');
});

t.test('a worker killed by a signal while starting is replaced: the group may be stopping', async (t) => {
  const s = start(2);
  const [a, b] = s.cluster.forks;
  a!.ready();
  // SIGTERM to the whole group (systemd, Ctrl-C) can end a starting worker
  // before it handles signals, and before the primary hears its own.
  b!.exit(null, 'SIGTERM');
  t.equal(s.cluster.forks.length, 3, 'replaced, not taken for a failed start');
  s.controller.abort();
  s.cluster.forks[2]!.ready();
  await s.done;
  t.equal(s.outcome(), 'resolved');
});

t.test('messages other than READY are ignored, and READY counts once', async (t) => {
  const s = start(1);
  const [a] = s.cluster.forks;
  a!.message({ cmd: 'something else' });
  a!.message('pkgtorrent:other');
  s.controller.abort();
  t.same(a!.sent, [], 'not ready, so not asked');
  a!.message(READY_MESSAGE);
  a!.message(READY_MESSAGE);
  t.same(a!.sent, [STOP_MESSAGE]);
  await s.done;
  t.equal(s.outcome(), 'resolved');
});

t.test('an aborted signal before the start forks nothing', async (t) => {
  const cluster = new FakeCluster();
  await supervise({ cluster, workers: 2, signal: AbortSignal.abort(), log: () => {}, onListening: () => {} });
  t.equal(cluster.forks.length, 0);
});

/** The worker's link, recording what happens in which order. */
function fakeLink() {
  const events: string[] = [];
  let listener: ((m: unknown) => void) | null = null;
  const link: PrimaryLink = {
    onMessage: (fn) => {
      events.push('listening for messages');
      listener = fn;
    },
    send: (m) => void events.push(`sent ${JSON.stringify(m)}`),
    disconnect: () => void events.push('disconnected'),
  };
  return { link, events, deliver: (m: unknown) => listener?.(m) };
}

t.test('worker side: READY goes out only once STOP can be heard; STOP ends the wait', async (t) => {
  const f = fakeLink();
  let stopped = false;
  const wait = stopRequested(undefined, f.link).then(() => void (stopped = true));
  t.same(f.events, ['listening for messages', `sent ${JSON.stringify(READY_MESSAGE)}`]);
  f.deliver('pkgtorrent:other');
  f.deliver({ cmd: 'NODE_CLUSTER' });
  await settle();
  t.notOk(stopped, 'other messages do not stop it');
  f.deliver(STOP_MESSAGE);
  await wait;
  t.ok(stopped);
});

t.test("worker side: the process's own signal stops it too, also before start-up ended", async (t) => {
  const f = fakeLink();
  const controller = new AbortController();
  const wait = stopRequested(controller.signal, f.link);
  controller.abort();
  await wait;
  t.pass('stopped by its own signal');
  const g = fakeLink();
  await stopRequested(AbortSignal.abort(), g.link);
  t.same(g.events, [], 'already stopping: nothing to announce');
  const controller2 = new AbortController();
  const single = stopRequested(controller2.signal, null);
  controller2.abort();
  await single;
});

t.test('asks go to ready workers only; answers come in fork order; one that exits meanwhile is left out', async (t) => {
  const s = start(3);
  const [a, b, c] = s.cluster.forks;
  a!.ready();
  c!.ready();
  t.equal(s.workers().readyCount(), 2, 'two of three ready');
  const asked = s.workers().ask('metrics');
  t.same(b!.asks, [], 'the starting worker is not asked');
  t.equal(a!.asks.length, 1);
  const ask = a!.asks[0]!;
  t.same(c!.asks, [ask], 'the same ask to every ready worker');
  t.match(ask, { type: ASK_MESSAGE, what: 'metrics' });
  c!.message({ type: REPLY_MESSAGE, id: ask.id, answer: 'from c' });
  c!.message({ type: REPLY_MESSAGE, id: ask.id, answer: 'again from c' });
  b!.message({ type: REPLY_MESSAGE, id: ask.id, answer: 'from b, not asked' });
  a!.message({ type: REPLY_MESSAGE, id: ask.id, answer: 'from a' });
  t.same(await asked, [
    { pid: 1000, answer: 'from a' },
    { pid: 1002, answer: 'from c' },
  ]);

  const second = s.workers().ask('ready');
  const id = a!.asks[1]!.id;
  t.not(id, ask.id, 'each ask has its own id');
  a!.message({ type: REPLY_MESSAGE, id, answer: null });
  c!.exit(null, 'SIGKILL');
  t.same(await second, [{ pid: 1000, answer: null }], 'the worker that died is left out');
  t.same(
    s.clock.timers.filter((x) => x.ms === ASK_TIMEOUT_MS).map((x) => x.cancelled),
    [true, true],
    'both timeouts cancelled',
  );
  s.controller.abort();
  b!.ready();
  s.cluster.forks[3]!.ready();
  await s.done;
  t.equal(s.outcome(), 'resolved');
});

t.test('an ask fails on an error answer, and when a worker does not answer in time', async (t) => {
  const s = start(2);
  const [a, b] = s.cluster.forks;
  a!.ready();
  b!.ready();
  const failed = s.workers().ask('metrics');
  a!.message({ type: REPLY_MESSAGE, id: a!.asks[0]!.id, error: 'collect threw' });
  await t.rejects(failed, { message: 'worker 1000: collect threw' });
  const slow = s.workers().ask('metrics');
  a!.message({ type: REPLY_MESSAGE, id: a!.asks[1]!.id, answer: 1 });
  s.clock.fire();
  await t.rejects(slow, { message: `no answer from worker 1001 within ${ASK_TIMEOUT_MS / 1000} s` });
  s.controller.abort();
  await s.done;
});

t.test('an ask with no worker ready answers at once, empty', async (t) => {
  const s = start(1);
  t.equal(s.workers().readyCount(), 0);
  t.same(await s.workers().ask('metrics'), []);
  s.controller.abort();
  s.cluster.forks[0]!.ready();
  await s.done;
});

t.test('worker side: an ask is answered with its function, an error as the reply error; others are left alone', async (t) => {
  const sent: unknown[] = [];
  let deliver: (m: unknown) => void = () => {};
  const link: PrimaryLink = { onMessage: (fn) => void (deliver = fn), send: (m) => void sent.push(m), disconnect: () => {} };
  answerAsks(link, {
    metrics: async () => [{ name: 'x' }],
    ready: async () => {
      throw new Error('broken');
    },
  });
  deliver({ type: ASK_MESSAGE, id: 7, what: 'metrics' });
  deliver({ type: ASK_MESSAGE, id: 8, what: 'ready' });
  deliver({ type: ASK_MESSAGE, id: 9, what: 'toString' });
  deliver(STOP_MESSAGE);
  deliver(null);
  await settle();
  t.same(sent, [
    { type: REPLY_MESSAGE, id: 7, answer: [{ name: 'x' }] },
    { type: REPLY_MESSAGE, id: 8, error: 'broken' },
  ]);
});

// The real binary. SIGTERM goes to the primary only, as `kill PID` does.

interface Spawned {
  pid: number;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function spawnServe(t: Test, args: string[]): Spawned {
  const dir = t.testdir({ root: { pub: { 'a.rpm': 'x'.repeat(50_000) } }, cache: {} });
  const argv = ['serve', '--host', '127.0.0.1', '--root', join(dir, 'root'), '--cache-dir', join(dir, 'cache'), '--trackers', join(dir, 'none'), ...args];
  const child = spawn(...nodeCommand(BIN, argv), { env: { ...process.env, PKGTORRENT_CONFIG: '' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  // Far past the 15 s grace: a hang shows as a SIGKILL exit, and nothing outlives the test.
  const safety = setTimeout(() => child.kill('SIGKILL'), 40_000);
  void exited.then(() => clearTimeout(safety));
  t.teardown(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  return { pid: child.pid!, stderr: () => err, exited };
}

/** Live processes whose parent is pid. */
function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .filter((p) => procStat(p)?.ppid === pid);
}

/** A process that is gone, or a zombie waiting to be reaped after its parent left. */
const gone = (pid: number) => {
  const st = procStat(pid);
  return st === null || st.state === 'Z';
};

for (const when of ['right after "serving"', 'before "serving"'] as const) {
  t.test(`--workers 2, SIGTERM ${when}: exits 0 within the grace and leaves no worker`, async (t) => {
    const s = spawnServe(t, ['--port', '0', '--workers', '2']);
    let workers: number[] = [];
    if (when === 'before "serving"') {
      t.ok(await until(20_000, () => (workers = childrenOf(s.pid)).length === 2, 5), 'both workers forked');
      t.notMatch(s.stderr(), /serving/, 'the signal comes while they start');
    } else {
      t.ok(await until(20_000, () => /serving http/.test(s.stderr()), 5), 'serving');
      workers = childrenOf(s.pid);
      t.equal(workers.length, 2, 'both workers forked');
    }
    process.kill(s.pid, 'SIGTERM');
    t.same(await s.exited, { code: 0, signal: null }, 'exited by itself, without being killed');
    t.same(
      workers.filter((p) => !gone(p)),
      [],
      'no worker process left',
    );
    t.notMatch(s.stderr(), /internal error|did not stop|\n\s+at /, 'a quiet stop');
  });
}

t.test('--workers 2 on a port in use: one line per worker, exit 1, no worker left', async (t) => {
  const busy = createServer();
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  t.teardown(() => void busy.close());
  const port = (busy.address() as AddressInfo).port;
  const s = spawnServe(t, ['--port', String(port), '--workers', '2']);
  t.ok(await until(20_000, () => childrenOf(s.pid).length === 2, 5), 'both workers forked');
  const workers = childrenOf(s.pid);
  t.same(await s.exited, { code: 1, signal: null });
  t.same(
    workers.filter((p) => !gone(p)),
    [],
    'no worker process left',
  );
  t.match(s.stderr(), `cannot listen on 127.0.0.1:${port}: address already in use`);
  t.match(s.stderr(), /worker \d+ failed to start \(exit 1\): stopping/);
  t.notMatch(s.stderr(), /starting another|\n\s+at /);
});
