// InfoCache bookkeeping that requests never see directly.
import t from 'tap';
import { mkdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CacheWrites } from '../src/core/cache-writes.js';
import { InfoCache } from '../src/core/info-cache.js';

const DAY = 86400_000;

t.test('the per-key use-time memo is bounded: a forgotten key is simply checked again', async (t) => {
  const dir = t.testdir({});
  const cache = new InfoCache(dir, { waitMs: 1000, touchedKeys: 4, writes: new CacheWrites(dir, (l) => t.fail(l)) });
  const keys = Array.from({ length: 6 }, (_, i) => String(i).repeat(40));
  mkdirSync(join(dir, 'info'));
  const old = new Date(Date.now() - 3 * DAY);
  const entry = join(dir, 'info', keys[0]!);
  writeFileSync(entry, 'x');
  const refreshed = () => Date.now() - statSync(entry).mtimeMs < DAY;

  utimesSync(entry, old, old);
  await cache.used(keys[0]!);
  t.ok(refreshed(), 'a first use refreshes an old use time');

  utimesSync(entry, old, old);
  t.equal(cache.used(keys[0]!), null, 'a second use within the hour asks nothing');
  t.notOk(refreshed(), 'and leaves the use time alone');

  // Four other keys push the first out of the memo; then its use is checked again.
  for (const k of keys.slice(1, 5)) await cache.used(k);
  await cache.used(keys[0]!);
  t.ok(refreshed(), 'after being forgotten, the key is checked (and refreshed) again');
});
