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
