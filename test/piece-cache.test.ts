// The piece cache: entries are trusted only when fully valid and current.
import t, { type Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, utimesSync, existsSync, readdirSync, statSync, truncateSync, appendFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { HashPool } from '../src/core/hasher.js';
import { PieceCache, decodeEntry, encodeEntry, entryLength, isCurrentEntry, MAGIC, FORMAT_VERSION } from '../src/core/piece-cache.js';
import { PieceStore, hashFile } from '../src/core/piece-store.js';
import { MirrorRoot } from '../src/core/root.js';
import { TEMP_MARKER, isTempName, tempPathFor } from '../src/core/atomic.js';
import { versionOne } from './helpers/piece-entries.js';

const PL = 16384;

async function setup(t: Test, files: Record<string, string | Buffer>) {
  const dir = t.testdir({ root: { pub: files }, cache: {} });
  const root = await MirrorRoot.open(join(dir, 'root'));
  const pool = new HashPool(2);
  t.teardown(() => pool.close());
  const cache = new PieceCache(join(dir, 'cache'));
  return { dir, root, pool, cache, store: new PieceStore(cache, pool) };
}

t.test('miss, then hit; the entry round-trips', async (t) => {
  const { root, cache, store } = await setup(t, { 'a.rpm': randomBytes(50_000) });
  const file = root.file('/pub/a.rpm');
  t.equal(await cache.get(file.rel, PL, file), null, 'cold cache misses');
  const first = await store.get(file, PL);
  t.equal(first.hashed, true);
  t.equal(first.pieces.full.length, 3 * 20, 'three full pieces');
  t.ok(first.pieces.tail, 'a tail for the last partial piece');
  t.notOk(first.pieces.tail!.padded.equals(first.pieces.tail!.plain), 'padded and plain tail hashes differ');
  const second = await store.get(file, PL);
  t.equal(second.hashed, false, 'second read is a hit');
  t.same(second.pieces, first.pieces);
  t.same(decodeEntry(encodeEntry(first.pieces)), first.pieces, 'encode/decode round-trip');
});

t.test('an entry has the documented bytes', async (t) => {
  // Built field by field from the layout in piece-cache.ts, big-endian.
  const h = (c: string) => Buffer.alloc(20, c);
  const expected = (size: number, mtimeNs: bigint, hashes: Buffer[]) => {
    const head = Buffer.alloc(32 + 8);
    head.write('PKTPIECE', 0, 'latin1');
    head.writeUInt16BE(2, 8); // version
    head.writeUInt16BE(1, 10); // sections
    head.writeUInt32BE(PL, 12);
    head.writeBigUInt64BE(BigInt(size), 16);
    head.writeBigInt64BE(mtimeNs, 24);
    head.writeUInt16BE(1, 32); // SHA-1 pieces; reserved stays 0
    head.writeUInt32BE(hashes.length * 20, 36);
    const body = Buffer.concat([head, ...hashes]);
    return Buffer.concat([body, createHash('sha1').update(body).digest()]);
  };
  const withTail = { pieceLength: PL, size: 2 * PL + 5, mtimeNs: -1n, full: Buffer.concat([h('a'), h('b')]), tail: { padded: h('p'), plain: h('q') } };
  t.same(encodeEntry(withTail), expected(2 * PL + 5, -1n, [h('a'), h('b'), h('p'), h('q')]), 'full pieces, then the padded and the plain tail');
  const exact = { pieceLength: PL, size: PL, mtimeNs: 1_700_000_000_123_456_789n, full: h('c'), tail: null };
  t.same(encodeEntry(exact), expected(PL, 1_700_000_000_123_456_789n, [h('c')]), 'no tail');
  t.same(decodeEntry(encodeEntry(withTail)), withTail, 'and it decodes to what was encoded');
});

t.test('a size or mtime change makes the entry stale', async (t) => {
  const { root, store, dir } = await setup(t, { 'a.rpm': randomBytes(40_000) });
  const path = join(dir, 'root/pub/a.rpm');
  await store.get(root.file('pub/a.rpm'), PL);
  const st = statSync(path);
  utimesSync(path, st.atime, new Date(st.mtimeMs + 5000));
  t.equal((await store.get(root.file('pub/a.rpm'), PL)).hashed, true, 'mtime change rehashes');
  appendFileSync(path, 'x');
  const r = await store.get(root.file('pub/a.rpm'), PL);
  t.equal(r.hashed, true, 'size change rehashes');
  t.equal(r.pieces.size, 40_001);
});

t.test('truncated, garbage, corrupted and old-version entries are misses and get rewritten', async (t) => {
  const { root, cache, store } = await setup(t, { 'a.rpm': randomBytes(70_000) });
  const file = root.file('pub/a.rpm');
  await store.get(file, PL);
  const entry = cache.entryPath(file.rel, PL);
  const good = readFileSync(entry);
  const flipped = Buffer.from(good);
  flipped[40]! ^= 1;
  const oldVersion = Buffer.from(good);
  oldVersion.writeUInt16BE(FORMAT_VERSION + 1, 8);
  const cases: Array<[string, Buffer]> = [
    ['truncated', good.subarray(0, good.length - 7)],
    ['empty', Buffer.alloc(0)],
    ['garbage', randomBytes(good.length)],
    ['one flipped bit', flipped],
    ['another format version', oldVersion],
    ['wrong magic', Buffer.concat([Buffer.from('XXXXXXXX'), good.subarray(MAGIC.length)])],
  ];
  for (const [name, bytes] of cases) {
    writeFileSync(entry, bytes);
    t.equal(await cache.get(file.rel, PL, file), null, `${name}: rejected`);
    t.equal((await store.get(file, PL)).hashed, true, `${name}: rehashed`);
    t.ok(readFileSync(entry).equals(good), `${name}: rewritten with the good entry`);
  }
});

t.test('an entry for another piece length is a separate entry', async (t) => {
  const { root, cache, store } = await setup(t, { 'a.rpm': randomBytes(70_000) });
  const file = root.file('pub/a.rpm');
  await store.get(file, PL);
  t.equal(await cache.get(file.rel, PL * 2, file), null);
  t.ok(existsSync(cache.entryPath(file.rel, PL)));
  t.notOk(existsSync(cache.entryPath(file.rel, PL * 2)));
});

t.test('a file modified while it is hashed is reported and not cached', async (t) => {
  const { root, cache, pool, store, dir } = await setup(t, { 'big.iso': randomBytes(40 * 1024 * 1024) });
  const path = join(dir, 'root/pub/big.iso');
  const file = root.file('pub/big.iso');
  let modified = false;
  await t.rejects(
    store.get(file, 1 << 20, () => {
      if (modified) return;
      modified = true;
      truncateSync(path, 20 * 1024 * 1024); // shrinks under the worker
    }),
    { name: 'PkgError', kind: 'changed' },
  );
  t.ok(modified, 'the file was changed during hashing');
  t.notOk(existsSync(cache.entryPath(file.rel, 1 << 20)), 'no entry written');
  // A same-size rewrite with a new mtime is caught by the stamp check too.
  writeFileSync(path, randomBytes(1000));
  const small = root.file('pub/big.iso');
  appendFileSync(path, 'more');
  await t.rejects(hashFile(pool, small, PL), { name: 'PkgError', kind: 'changed' });
});

t.test('concurrent writers of one entry leave one valid entry and no temp files', async (t) => {
  const { root, cache, pool } = await setup(t, { 'a.rpm': randomBytes(300_000) });
  const file = root.file('pub/a.rpm');
  // Separate stores: no in-process dedupe, so every one of them writes.
  const stores = Array.from({ length: 12 }, () => new PieceStore(cache, pool));
  const results = await Promise.all(stores.map((s) => s.get(file, PL)));
  t.ok(results.every((r) => r.hashed));
  const entry = cache.entryPath(file.rel, PL);
  t.same(decodeEntry(readFileSync(entry)), results[0]!.pieces, 'the entry is valid');
  t.same(readdirSync(dirname(entry)).filter(isTempName), [], 'no temp files left');
});

t.test('a temporary file is named beside its target, hidden, marked, and never twice the same', async (t) => {
  for (const [path, dir, name] of [
    ['/var/cache/pkgtorrent/pieces/a.rpm/16384', '/var/cache/pkgtorrent/pieces/a.rpm/', '16384'],
    ['rel/x.torrent', 'rel/', 'x.torrent'],
    ['bare', '', 'bare'],
  ] as const) {
    const a = tempPathFor(path);
    const b = tempPathFor(path);
    t.not(a, b, `${path}: two names`);
    for (const tmp of [a, b]) {
      t.equal(tmp.slice(0, dir.length), dir, `${tmp}: in the target's directory`);
      t.ok(tmp.slice(dir.length).startsWith(`.${name}${TEMP_MARKER}`), `${tmp}: a hidden name made from the target's`);
      t.notOk(tmp.slice(dir.length).includes('/'), `${tmp}: no deeper`);
      t.ok(isTempName(tmp), `${tmp}: what cache clean recognises`);
    }
  }
});

t.test('an entry that cannot be written is reported to onCacheError; the hashes are still returned', async (t) => {
  const { root, pool, cache } = await setup(t, { 'a.rpm': randomBytes(40_000) });
  const file = root.file('pub/a.rpm');
  // A file where the entry's directory goes: the kernel refuses the write, whoever runs the test.
  const entry = cache.entryPath(file.rel, PL);
  mkdirSync(dirname(dirname(entry)), { recursive: true });
  writeFileSync(dirname(entry), 'in the way');
  const errors: Array<[string, string | undefined]> = [];
  const store = new PieceStore(cache, pool, { onCacheError: (rel, err) => errors.push([rel, (err as NodeJS.ErrnoException).code]) });
  const r = await store.get(file, PL);
  t.equal(r.hashed, true);
  t.same(r.pieces, await hashFile(pool, file, PL), 'the hashes, as if the entry had been written');
  t.match(errors, [[file.rel, /^(ENOTDIR|EEXIST)$/]], 'the failed write, once, for that file');
  t.notOk(existsSync(entry), 'no entry');
  t.same(readdirSync(dirname(dirname(entry))).filter(isTempName), [], 'no temp file left');
});

t.test('one store hashes a file once for concurrent requests', async (t) => {
  const { root, store } = await setup(t, { 'a.rpm': randomBytes(300_000) });
  const file = root.file('pub/a.rpm');
  const results = await Promise.all(Array.from({ length: 20 }, () => store.get(file, PL)));
  t.equal(new Set(results).size, 1, 'all share one result');
});

t.test('use time is refreshed on a hit only when older than a day', async (t) => {
  const { root, cache, store } = await setup(t, { 'a.rpm': 'hello' });
  // An old source, as on a mirror: with an atime not after the mtime, the kernel (relatime) would move it on any read.
  const longAgo = new Date(Date.now() - 30 * 86400_000);
  utimesSync(join(root.real, 'pub/a.rpm'), longAgo, longAgo);
  const file = root.file('pub/a.rpm');
  await store.get(file, PL);
  const entry = cache.entryPath(file.rel, PL);
  const old = new Date(Date.now() - 3 * 86400_000);
  utimesSync(entry, old, old);
  await cache.get(file.rel, PL, file);
  t.ok(Date.now() - statSync(entry).atimeMs < 60_000, 'refreshed');
  // The kernel may move an old atime on a read too; only our refresh puts the source's mtime back.
  t.ok(Math.abs(statSync(entry).mtimeMs - statSync(join(root.real, 'pub/a.rpm')).mtimeMs) < 0.002, 'by us, with the mtime the source has');
  // Used an hour ago. The mtime is a marker our refresh would put back to the
  // source's (the kernel moves the atime after a utimes, by relatime's ctime rule).
  const recent = new Date(Date.now() - 3600_000);
  const marker = new Date(longAgo.getTime() + 5000);
  utimesSync(entry, recent, marker);
  await cache.get(file.rel, PL, file);
  // To within utimes' rounding; a refresh would have moved it 5 s.
  t.ok(Math.abs(statSync(entry).mtimeMs - marker.getTime()) < 1, 'left alone');
});

t.test("an entry carries its source's mtime, and its use time as atime", async (t) => {
  const { root, cache, store } = await setup(t, { 'a.rpm': randomBytes(40_000) });
  const src = join(root.real, 'pub/a.rpm');
  const past = new Date('2020-03-04T05:06:07.123Z');
  utimesSync(src, past, past);
  const file = root.file('pub/a.rpm');
  const before = Date.now();
  await store.get(file, PL);
  const entry = statSync(cache.entryPath(file.rel, PL), { bigint: true });
  const srcStat = statSync(src, { bigint: true });
  // futimes rounds to the microsecond here, after a double's rounding.
  t.ok(entry.mtimeNs - srcStat.mtimeNs < 2000n && srcStat.mtimeNs - entry.mtimeNs < 2000n, 'mtime is the source mtime to within utimes precision');
  t.ok(Number(entry.atimeMs) >= before - 1000, 'atime is the time of writing');
  t.equal(Number(entry.size), entryLength(file.size, PL), 'the size follows from the source size');
  t.ok(isCurrentEntry(statSync(cache.entryPath(file.rel, PL)), statSync(src), PL), 'current by stat alone');
  // The entry's size tells the piece count only: a same-count size change with the same mtime is for readers to notice.
  t.notOk(isCurrentEntry(statSync(cache.entryPath(file.rel, PL)), { size: file.size + PL, mtimeMs: statSync(src).mtimeMs }, PL), 'another piece count is not');
  t.notOk(isCurrentEntry(statSync(cache.entryPath(file.rel, PL)), { size: file.size, mtimeMs: statSync(src).mtimeMs + 1 }, PL), 'another mtime is not');
});

t.test("a use refreshes a version 2 entry's atime and leaves its mtime the source's", async (t) => {
  const { root, cache, store } = await setup(t, { 'a.rpm': 'hello' });
  const file = root.file('pub/a.rpm');
  await store.get(file, PL);
  const path = cache.entryPath(file.rel, PL);
  const mtime = statSync(path).mtimeMs;
  const old = new Date(Date.now() - 3 * 86400_000);
  utimesSync(path, old, new Date(mtime));
  t.ok(await cache.get(file.rel, PL, file));
  t.ok(Date.now() - statSync(path).atimeMs < 60_000, 'atime refreshed');
  t.ok(Math.abs(statSync(path).mtimeMs - mtime) < 0.002, 'mtime unchanged');
});

t.test('a version 1 entry is still read, its use time being its mtime', async (t) => {
  const { root, cache, store } = await setup(t, { 'a.rpm': randomBytes(20_000) });
  const file = root.file('pub/a.rpm');
  const { pieces } = await store.get(file, PL);
  const path = cache.entryPath(file.rel, PL);
  writeFileSync(path, versionOne(encodeEntry(pieces)));
  const old = new Date(Date.now() - 3 * 86400_000);
  utimesSync(path, old, old);
  t.same(await cache.get(file.rel, PL, file), pieces, 'a hit');
  t.ok(Date.now() - statSync(path).mtimeMs < 60_000, 'mtime refreshed as version 1 did');
});
