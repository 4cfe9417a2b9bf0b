// The two ways of running per-item work: eachLimit (bounded concurrency) and
// inTurns (batches between turns of the event loop).
import t from 'tap';
import { Limiter, eachLimit, inTurns } from '../src/core/limit.js';

t.test('inTurns: results in order, the event loop runs between batches', async (t) => {
  const order: string[] = [];
  setImmediate(() => order.push('other work'));
  const out = await inTurns([1, 2, 3, 4, 5], 2, (n) => {
    order.push(`item ${n}`);
    return n * 10;
  });
  t.same(out, [10, 20, 30, 40, 50]);
  t.same(order.slice(0, 3), ['item 1', 'item 2', 'other work'], 'a queued immediate ran after the first batch');
});

t.test('inTurns: the first failure rejects and no batch starts after it', async (t) => {
  const calls: number[] = [];
  await t.rejects(
    inTurns([0, 1, 2, 3, 4, 5, 6, 7], 2, async (n) => {
      calls.push(n);
      if (n === 1) throw new Error('bad item 1');
      return n;
    }),
    { message: 'bad item 1' },
  );
  t.same(calls, [0, 1], 'only the failing batch ran');
});

t.test('eachLimit: never more than the limit in flight', async (t) => {
  let inFlight = 0;
  let most = 0;
  await eachLimit([...Array(20).keys()], 3, async () => {
    most = Math.max(most, ++inFlight);
    await new Promise((r) => setTimeout(r, 1));
    inFlight--;
  });
  t.equal(most, 3);
});

t.test('Limiter: never more than the limit at once, every task runs, in order of arrival', async (t) => {
  const gate = new Limiter(2);
  let active = 0;
  let most = 0;
  const started: number[] = [];
  const results = await Promise.all(
    [0, 1, 2, 3, 4].map((n) =>
      gate.run(async () => {
        started.push(n);
        active++;
        most = Math.max(most, active);
        await new Promise((r) => setImmediate(r));
        active--;
        return n * 2;
      }),
    ),
  );
  t.same(results, [0, 2, 4, 6, 8]);
  t.equal(most, 2, 'at most two at once');
  t.same(started, [0, 1, 2, 3, 4], 'first come first served');
  await t.rejects(gate.run(async () => Promise.reject(new Error('boom'))), /boom/);
  t.equal(await gate.run(async () => 'after'), 'after', 'a failure frees its slot');
});
