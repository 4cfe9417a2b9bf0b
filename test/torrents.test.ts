// Torrents.lookup, in-process: digest GETs share a stat check, and the sharing
// never lets a request be answered from a check older than itself.
import t, { type Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CacheWrites } from '../src/core/cache-writes.js';
import { HashPool } from '../src/core/hasher.js';
import { InfoCache } from '../src/core/info-cache.js';
import { PieceCache } from '../src/core/piece-cache.js';
import { PieceStore } from '../src/core/piece-store.js';
import { MirrorRoot } from '../src/core/root.js';
import { PieceMemo } from '../src/service/piece-memo.js';
import { resolveFiles } from '../src/service/resolve-paths.js';
import { Torrents, type TorrentsOptions } from '../src/service/torrents.js';
import bencode from 'bencode';

const RELS = ['pub/p/a.rpm', 'pub/p/b.rpm', 'pub/p/c.rpm'];
const KEY = 'a1'.repeat(20);

async function setup(t: Test, revalidateMs = 0, now?: () => number, more: Partial<TorrentsOptions> = {}) {
  const dir = t.testdir({ root: { pub: { p: { 'a.rpm': randomBytes(30_000), 'b.rpm': randomBytes(70_000), 'c.rpm': randomBytes(5) } } }, cache: {} });
  const root = await MirrorRoot.open(join(dir, 'root'));
  const pool = new HashPool(1);
  t.teardown(() => pool.close());
  const torrents = new Torrents({
    root,
    pieces: new PieceMemo(new PieceStore(new PieceCache(join(dir, 'cache')), pool)),
    infoCache: new InfoCache(join(dir, 'cache'), {
      waitMs: 5000,
      writes: new CacheWrites(join(dir, 'cache'), (l) => t.fail(l)),
      revalidateMs,
      ...(now ? { now } : {}),
    }),
    pieceLength: 65536,
    serviceName: 'torrent_service',
    queueLimit: 4,
    log: () => {},
    ...more,
  });
  const built = await torrents.forFiles(KEY, await resolveFiles(root, RELS), 'multi', torrents.now());
  // A new mtime (whole seconds later) that every filesystem can record.
  const touch = (rel: string) => {
    const later = new Date(Date.now() + 5000);
    utimesSync(join(dir, 'root', rel), later, later);
  };
  return { torrents, built, touch, root, dir };
}

t.test('GETs in one turn all get the entry from the check they share', async (t) => {
  const { torrents, built } = await setup(t);
  const answers = await Promise.all(Array.from({ length: 10 }, async () => torrents.lookup(KEY)));
  t.ok(answers.every((e) => e === built), 'every GET answered with the built entry');
});

t.test('a change made before a GET arrived is always seen by that GET', async (t) => {
  const { torrents, built, touch } = await setup(t);
  // Known good now: a GET answered after a check.
  t.equal(await torrents.lookup(KEY), built);
  // Joined before the touch, answered by a check that starts after it: it may
  // see the change or not, but the GET that arrives after the touch must.
  const early = torrents.lookup(KEY);
  touch(RELS[1]!);
  const late = torrents.lookup(KEY);
  t.equal(await late, null, 'the GET after the change is not answered from the old entry');
  t.equal(await early, null, 'the shared check ran after the change');
  t.equal(await torrents.lookup(KEY), null, 'and stays not cached');
});

t.test('a check answered earlier is not reused for a later GET', async (t) => {
  const { torrents, built, touch } = await setup(t);
  t.equal(await torrents.lookup(KEY), built);
  t.equal(await torrents.lookup(KEY), built);
  touch(RELS[2]!);
  t.equal(await torrents.lookup(KEY), null, 'the GET after the change made its own check');
});

t.test('--revalidate: within the window a hot entry is not re-checked', async (t) => {
  const { torrents, built, touch } = await setup(t, 60_000);
  t.equal(await torrents.lookup(KEY), built);
  touch(RELS[0]!);
  t.equal(await torrents.lookup(KEY), built, 'the operator accepted up to a minute of staleness');
});

t.test('the default 1 s window: a changed file is answered at most until the window ends, on the injected clock', async (t) => {
  let clock = 1_000_000;
  const { torrents, built, touch } = await setup(t, 1000, () => clock);
  t.equal(await torrents.lookup(KEY), built, 'checked at t=0');
  touch(RELS[0]!);
  clock += 999;
  t.equal(await torrents.lookup(KEY), built, '999 ms later, still inside the window');
  clock += 2;
  t.equal(await torrents.lookup(KEY), null, '1001 ms after the check, the change is seen');
  t.equal(await torrents.lookup(KEY), null, 'and stays seen');
});

t.test('a file stat shared by two digests: the window counts from the stat, not from the later check', async (t) => {
  let clock = 1_000_000;
  const { torrents, built, touch, root } = await setup(t, 1000, () => clock);
  const key2 = 'b2'.repeat(20);
  const built2 = await torrents.forFiles(key2, await resolveFiles(root, RELS.slice(0, 2)), 'multi', torrents.now());
  clock += 1001;
  t.equal(await torrents.lookup(KEY), built, 'the first digest checked its three files at t1');
  touch(RELS[0]!);
  clock += 500;
  t.equal(await torrents.lookup(key2), built2, 'the second digest, checked at t1 + 500, uses the stat of t1 (still inside the window)');
  clock += 501;
  t.equal(await torrents.lookup(key2), null, '1001 ms after that stat, the change is seen, though the digest itself was checked 501 ms ago');
  t.equal(await torrents.lookup(KEY), null, 'and by the first digest too');
});

t.test('strict: every check stats the files again', async (t) => {
  const { torrents, built, touch } = await setup(t, 0);
  t.equal(await torrents.lookup(KEY), built);
  touch(RELS[0]!);
  t.equal(await torrents.lookup(KEY), null, 'no stat is reused without a window');
});

t.test('a ready torrent is reused for the same entry and host, never for a rebuilt entry', async (t) => {
  const { torrents, built, touch, root } = await setup(t, 0);
  const first = torrents.torrent(KEY, built, 'http://mirror', []);
  t.equal(torrents.torrent(KEY, built, 'http://mirror', []), first, 'same entry, host and trackers: the same bytes');
  const other = torrents.torrent(KEY, built, 'http://other', []);
  t.not(other.bytes.toString('latin1'), first.bytes.toString('latin1'), 'another host: its own web seed');
  t.not(torrents.torrent(KEY, built, 'http://other', ['http://t.example/announce']).bytes.length, other.bytes.length, 'other trackers: made again');
  writeFileSync(join(root.dir, RELS[2]!), randomBytes(9));
  touch(RELS[2]!);
  const rebuilt = await torrents.forFiles(KEY, await resolveFiles(root, RELS), 'multi', torrents.now());
  t.not(rebuilt.infoHash.toString('hex'), built.infoHash.toString('hex'), 'the entry was rebuilt');
  const again = torrents.torrent(KEY, rebuilt, 'http://mirror', []);
  t.equal(again.infoHashHex, rebuilt.infoHash.toString('hex'), 'the torrent is made of the rebuilt entry');
  t.match(again.disposition, `filename=${rebuilt.infoHash.toString('hex')}.torrent`);
});

t.test('private and source: an entry in memory or on disk built with other values is never answered', async (t) => {
  // A minute's window: the plain entry is fresh in the shared memory, and still not answered.
  const { torrents, built, root } = await setup(t, 60_000);
  const o = (torrents as unknown as { o: TorrentsOptions }).o;
  const files = await resolveFiles(root, RELS);
  let plainEntry = built;
  for (const infoSettings of [{ private: true }, { source: 'fleet-a' }, { private: true, source: 'fleet-a' }, { source: 'fleet-b' }, {}]) {
    const logs: string[] = [];
    // Another service over the same info cache (memory and disk) and piece store, as after a restart with new settings.
    const other = new Torrents({ ...o, infoSettings, log: (l) => logs.push(l) });
    const what = JSON.stringify(infoSettings);
    // The cache holds the entry of the settings before (in memory, fresh, and on disk).
    t.equal(await other.lookup(KEY), null, `${what}: a digest GET is not answered from the entry of other settings (412)`);
    const e = await other.forFiles(KEY, files, 'multi', other.now());
    const info = bencode.decode(e.bytes) as { private?: number; source?: Uint8Array };
    t.equal(info.private, infoSettings.private ? 1 : undefined, `${what}: private`);
    t.equal(info.source && Buffer.from(info.source).toString(), infoSettings.source, `${what}: source`);
    // The expected hash, from the plain info dictionary with the keys added by a general bencoder.
    const plain = bencode.decode(plainEntry.bytes) as Record<string, unknown>;
    const want = { ...plain, ...(infoSettings.private ? { private: 1 } : {}), ...(infoSettings.source ? { source: infoSettings.source } : {}) };
    t.equal(e.infoHash.toString('hex'), createHash('sha1').update(bencode.encode(want)).digest('hex'), `${what}: the info hash of the plain info with those keys`);
    t.match(logs.join('\n'), /built .*: 3 files, 0 hashed/, `${what}: rebuilt from the piece cache`);
    t.equal(await other.lookup(KEY), e, `${what}: then answered`);
    t.equal(await torrents.lookup(KEY), Object.keys(infoSettings).length ? null : e, `${what}: and the plain service no longer answers it`);
    if (!Object.keys(infoSettings).length) plainEntry = e;
  }
  t.equal(plainEntry.infoHash.toString('hex'), built.infoHash.toString('hex'), 'back to no private and no source: the first info hash again');
});
