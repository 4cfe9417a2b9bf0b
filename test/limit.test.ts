// The two ways of running per-item work: eachLimit (bounded concurrency) and
// inTurns (batches between turns of the event loop).
import t from 'tap';
import { eachLimit, inTurns } from '../src/core/limit.js';

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
