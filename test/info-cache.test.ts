// InfoCache bookkeeping that requests never see directly.
import t from 'tap';
import { mkdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CacheWrites } from '../src/core/cache-writes.js';
import { InfoCache, type ReadyTorrent } from '../src/core/info-cache.js';
import type { InfoEntry } from '../src/core/info-entry.js';
import { sha1 } from '../src/core/metainfo.js';

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

/** An entry as decoded from disk, made up: freshness and memory never look inside. */
function entry(tag: string, infoBytes = 100): InfoEntry {
  return {
    bytes: Buffer.alloc(infoBytes, tag),
    infoHash: sha1(Buffer.from(tag)),
    name: 'pub',
    webSeedSuffix: '',
    files: [{ rel: `pub/${tag}.rpm`, size: 1, mtimeNs: 1n }],
    kind: 'multi',
    pieceLength: 65536,
    serviceName: 'torrent_service',
  };
}

function ready(e: InfoEntry, bytes = 10): ReadyTorrent {
  const hex = e.infoHash.toString('hex');
  return { baseUrl: 'http://m', trackers: [], bytes: Buffer.alloc(bytes), infoHashHex: hex, disposition: `attachment; filename=${hex}.torrent` };
}

t.test('freshness is the memory entry\'s own: a check holds for requests before it, or within the window, on the injected clock', async (t) => {
  const dir = t.testdir({});
  let clock = 1000;
  const writes = new CacheWrites(dir, (l) => t.fail(l));
  const strict = new InfoCache(dir, { waitMs: 0, writes, now: () => clock });
  const windowed = new InfoCache(dir, { waitMs: 0, writes, now: () => clock, revalidateMs: 1000 });
  const key = 'c'.repeat(40);
  const e = entry('a');
  for (const c of [strict, windowed]) {
    t.equal(c.fresh(key, clock), null, 'nothing checked: not fresh');
    c.checked(key, e, 1000);
  }
  t.equal(strict.fresh(key, 1000), e, 'strict: a request that arrived before the check');
  t.equal(strict.fresh(key, 1001), null, 'strict: not one that arrived after it');
  clock = 1999;
  t.equal(windowed.fresh(key, 1999), e, 'window: 999 ms after the check');
  clock = 2000;
  t.equal(windowed.fresh(key, 2000), null, 'window: 1000 ms after, checked again');
  windowed.forget(key);
  t.equal(windowed.fresh(key, 0), null, 'forgotten: not fresh for anyone');
});

t.test('a ready torrent lives in its entry\'s memory slot: same info hash only, and counted in the bound', async (t) => {
  const dir = t.testdir({});
  const writes = new CacheWrites(dir, (l) => t.fail(l));
  const cache = new InfoCache(dir, { waitMs: 0, writes, now: () => 0, memoryBytes: 4000 });
  const [k1, k2] = ['d'.repeat(40), 'e'.repeat(40)];
  const e1 = entry('a');
  cache.checked(k1, e1, 0);
  const r1 = ready(e1);
  cache.keepReady(k1, e1, r1);
  t.equal(cache.ready(k1, e1, 'http://m', []), r1, 'kept for the same entry, host and trackers');
  t.equal(cache.ready(k1, e1, 'http://other', []), null, 'not for another host');
  t.equal(cache.ready(k1, e1, 'http://m', ['udp://t:1']), null, 'not for other trackers');
  const rebuilt = entry('b');
  t.equal(cache.ready(k1, rebuilt, 'http://m', []), null, 'not for another entry under the same key');
  cache.checked(k1, rebuilt, 0);
  t.equal(cache.ready(k1, rebuilt, 'http://m', []), null, 'the new entry starts without the old torrent');
  t.equal(cache.fresh(k1, 0), rebuilt);

  const e2 = entry('c');
  cache.checked(k2, e2, 0);
  t.equal(cache.fresh(k1, 0), rebuilt, 'two small entries fit in 4000 bytes');
  cache.keepReady(k2, e2, ready(e2, 3300));
  t.equal(cache.fresh(k1, 0), null, 'a 3300-byte torrent pushes the older entry out');
  t.ok(cache.ready(k2, e2, 'http://m', []), 'and is kept with its own');
});
