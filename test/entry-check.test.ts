// The stat-only verdict `hash` gives each plain file, and the entry paths the
// piece cache builds without path.join.
import t from 'tap';
import { mkdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CACHED, LOOK, MISSING, checkEntry } from '../src/core/entry-check.js';
import { PieceCache, USE_TIME_GRAIN_MS, pieceEntryPath } from '../src/core/piece-cache.js';
import { cli } from './helpers/cli.js';

t.test("the piece cache's entry paths, by concatenation, are the ones pieceEntryPath joins", async (t) => {
  const rels = ['a.rpm', 'fedora/39/x86_64/Packages/k/kernel-6.5.rpm', 'pool/main/é/ü.deb', 'sp ace/x', 'a..b/c.'];
  for (const cacheDir of ['/var/cache/pkgtorrent', '/var/cache/pkgtorrent/', '/', 'relative/./cache', './c']) {
    const cache = new PieceCache(cacheDir);
    for (const rel of rels) t.equal(cache.entryPath(rel, 262144), pieceEntryPath(cacheDir, rel, 262144), `${cacheDir} + ${rel}`);
  }
});

t.test('verdicts from the stats of a file and its entry', async (t) => {
  // b.rpm has a full piece more, so an entry for it has another length.
  const dir = t.testdir({ root: { 'a.rpm': 'abc', 'b.rpm': 'x'.repeat(20000) }, cache: {} });
  const cacheDir = join(dir, 'cache');
  const src = join(dir, 'root/a.rpm');
  const entry = pieceEntryPath(cacheDir, 'a.rpm', 16384);
  const now = Date.now();
  t.equal(checkEntry(entry, src, 16384, now), MISSING, 'no entry');

  const st = statSync(src, { bigint: true });
  const pieces = { pieceLength: 16384, size: 3, mtimeNs: st.mtimeNs, full: Buffer.alloc(0), tail: { padded: Buffer.alloc(20, 1), plain: Buffer.alloc(20, 2) } };
  new PieceCache(cacheDir).write('a.rpm', pieces, now);
  t.equal(checkEntry(entry, src, 16384, now), CACHED, 'written just now for this stamp');
  t.equal(checkEntry(entry, src, 16384, now + USE_TIME_GRAIN_MS), LOOK, 'use time due: the closer look refreshes it');
  t.equal(checkEntry(entry, join(dir, 'root/b.rpm'), 16384, now), LOOK, 'a source of another size');
  utimesSync(src, new Date(), new Date(Number(st.mtimeNs / 1000000n) + 5000));
  t.equal(checkEntry(entry, src, 16384, now), LOOK, 'source touched since');
  t.equal(checkEntry(entry, join(dir, 'root/gone.rpm'), 16384, now), LOOK, 'source gone');

  const asDir = pieceEntryPath(cacheDir, 'b.rpm', 16384);
  mkdirSync(asDir, { recursive: true });
  t.equal(checkEntry(asDir, join(dir, 'root/b.rpm'), 16384, now), LOOK, 'entry path is a directory');
  writeFileSync(join(dir, 'cache/file'), '');
  t.equal(checkEntry(join(dir, 'cache/file/x/16384'), src, 16384, now), LOOK, 'ENOTDIR is not thrown');
});

t.test('hash refreshes a use time that is due, and leaves the entry mtime the source mtime', async (t) => {
  const dir = t.testdir({ root: { 'a.rpm': 'abc' }, cache: {} });
  const args = ['hash', '--root', join(dir, 'root'), '--cache-dir', join(dir, 'cache'), '--piece-length', '16K', '--json'];
  t.equal((await cli(args)).code, 0);
  const entry = join(dir, 'cache/pieces/a.rpm/16384');
  const mtimeNs = statSync(entry, { bigint: true }).mtimeNs;
  const old = (Date.now() - 2 * USE_TIME_GRAIN_MS) / 1000;
  utimesSync(entry, old, Number(mtimeNs) / 1e9);
  const s = JSON.parse((await cli(args)).stdout);
  t.equal(s.filesCached, 1, 'still cached');
  const after = statSync(entry, { bigint: true });
  t.ok(after.atimeMs > BigInt(Math.round(Date.now() - USE_TIME_GRAIN_MS)), 'use time moved to now');
  t.equal(after.mtimeNs, mtimeNs, 'mtime not moved');

  // Within the grain nothing is written.
  const recent = (Date.now() - 1000) / 1000;
  utimesSync(entry, recent, Number(mtimeNs) / 1e9);
  const before = statSync(entry, { bigint: true }).atimeNs;
  t.equal(JSON.parse((await cli(args)).stdout).filesCached, 1);
  t.equal(statSync(entry, { bigint: true }).atimeNs, before, 'a recent use time is left alone');
});
