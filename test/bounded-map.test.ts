import t from 'tap';
import { BoundedMap } from '../src/core/bounded-map.js';

t.test('keeps the newest max entries; setting a key again makes it newest', async (t) => {
  const m = new BoundedMap<string, number>(2);
  m.set('a', 1).set('b', 2);
  m.set('a', 10); // a is now newer than b
  m.set('c', 3);
  t.same([...m.entries()], [['a', 10], ['c', 3]], 'b, the oldest, was dropped');
  t.equal(m.get('b'), undefined);
  t.equal(m.size, 2);
});

t.test('with weigh: bounded by the weights added up, the newest kept even when heavy', async (t) => {
  const m = new BoundedMap<string, Buffer>(100, (b) => b.length);
  m.set('a', Buffer.alloc(40)).set('b', Buffer.alloc(40));
  t.equal(m.weight, 80);
  m.set('c', Buffer.alloc(40));
  t.same([...m.keys()], ['b', 'c'], 'a dropped: 120 is over 100');
  t.equal(m.weight, 80);
  m.set('b', Buffer.alloc(10));
  t.equal(m.weight, 50, 'setting a key again counts its new weight, not both');
  m.delete('c');
  t.equal(m.weight, 10);
  m.set('huge', Buffer.alloc(500));
  t.same([...m.keys()], ['huge'], 'a value over the bound pushes out the rest, and stays itself');
  m.clear();
  t.equal(m.weight, 0);
});

t.test('with weigh: a value that changes after set is taken out by the weight it came in with', async (t) => {
  const m = new BoundedMap<string, { n: number }>(10, (v) => v.n);
  const v = { n: 4 };
  m.set('a', v);
  v.n = 9;
  m.delete('a');
  t.equal(m.weight, 0, 'no drift');
});
