// The parallel hasher against a direct SHA-1 over the same bytes.
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HashPool, splitStream, type Segment } from '../src/core/hasher.js';
import { pieceHashes } from './helpers/bencode.js';

function expected(data: Buffer, pieceLength: number): { pieces: Buffer; paddedTail: Buffer | null } {
  const rest = data.length % pieceLength;
  const paddedTail = rest ? createHash('sha1').update(data.subarray(data.length - rest)).update(Buffer.alloc(pieceLength - rest)).digest() : null;
  return { pieces: pieceHashes(data, pieceLength), paddedTail };
}

// Every behaviour holds for worker threads alone and with the calling thread
// hashing too (make and hash); with one job the inline lane is the only hasher.
const LANES = [
  { label: 'workers', opts: {} },
  { label: 'inline lane', opts: { inline: true } },
] as const;

for (const { label, opts } of LANES) {
  t.test(`${label}: hashStream matches SHA-1 over the concatenated stream`, async (t) => {
    const dir = t.testdir();
    const pool = new HashPool(2, opts);
    t.teardown(() => pool.close());
    const sizes = [0, 1, 16384, 16385, 100_000, 3 * 1024 * 1024 + 7];
    const files = sizes.map((n, i) => {
      const path = join(dir, `f${i}`);
      const data = randomBytes(n);
      writeFileSync(path, data);
      return { path, data };
    });
    const all = Buffer.concat(files.map((f) => f.data));
    const segments: Segment[] = files.map((f) => ({ path: f.path, offset: 0, length: f.data.length }));
    // At 4 MiB the whole stream is one short piece, read into zeros in one go.
    for (const pl of [16384, 65536, 1 << 20, 4 << 20, 16 << 20]) {
      const got = await pool.hashStream(segments, pl, { padTail: true });
      const want = expected(all, pl);
      t.ok(got.pieces.equals(want.pieces), `pieces at piece length ${pl}`);
      t.same(got.paddedTail, want.paddedTail, `padded tail at piece length ${pl}`);
    }
  });

  t.test(`${label}: a stream split into many tasks still hashes in order`, async (t) => {
    const dir = t.testdir();
    const path = join(dir, 'big');
    const data = randomBytes(5 * 1024 * 1024 + 123);
    writeFileSync(path, data);
    const tasks = splitStream([{ path, offset: 0, length: data.length }], 16384, 1024 * 1024);
    t.equal(tasks.length, 6, 'six tasks of 1 MiB');
    t.ok(tasks.every((segs) => segs[0]!.offset % 16384 === 0), 'every task starts on a piece boundary');
    const pool = new HashPool(2, opts);
    t.teardown(() => pool.close());
    const got = await pool.hashStream([{ path, offset: 0, length: data.length }], 16384);
    t.ok(got.pieces.equals(expected(data, 16384).pieces));
    t.equal(got.paddedTail, null, 'no padded tail unless asked');
  });

  t.test(`${label}: progress adds up to the bytes hashed`, async (t) => {
    const dir = t.testdir();
    const path = join(dir, 'f');
    writeFileSync(path, randomBytes(20 * 1024 * 1024));
    const pool = new HashPool(1, opts);
    t.teardown(() => pool.close());
    let seen = 0;
    await pool.hashStream([{ path, offset: 0, length: 20 * 1024 * 1024 }], 1 << 20, { onProgress: (n) => (seen += n) });
    t.equal(seen, 20 * 1024 * 1024);
  });

  t.test(`${label}: a missing or short file is an error, not a result`, async (t) => {
    const dir = t.testdir({ short: 'abc' });
    const pool = new HashPool(1, opts);
    t.teardown(() => pool.close());
    await t.rejects(pool.hashStream([{ path: join(dir, 'nope'), offset: 0, length: 10 }], 16384), { name: 'PkgError', kind: 'changed' });
    await t.rejects(pool.hashStream([{ path: join(dir, 'short'), offset: 0, length: 10 }], 16384), { name: 'PkgError', kind: 'changed', message: /shrank/ });
    // The pool is still usable afterwards.
    const ok = await pool.hashStream([{ path: join(dir, 'short'), offset: 0, length: 3 }], 16384);
    t.ok(ok.pieces.equals(createHash('sha1').update('abc').digest()));
  });
  t.test(`${label}: a short piece that failed to read leaves nothing behind for the next one padded`, async (t) => {
    const dir = t.testdir({ short: 'abc', next: 'xy' });
    // One hasher, so both tasks use the same thread's buffers.
    const pool = new HashPool(1, opts);
    t.teardown(() => pool.close());
    await t.rejects(pool.hashStream([{ path: join(dir, 'short'), offset: 0, length: 10 }], 16384, { padTail: true }), { message: /shrank/ });
    const got = await pool.hashStream([{ path: join(dir, 'next'), offset: 0, length: 2 }], 16384, { padTail: true });
    t.same(got, expected(Buffer.from('xy'), 16384), 'plain and padded hashes of the next file alone');
  });

  t.test(`${label}: many small files at once are hashed in batches, each answered as its own`, async (t) => {
    const dir = t.testdir();
    const pool = new HashPool(2, opts);
    t.teardown(() => pool.close());
    const pl = 1 << 20;
    // Enough queued small tasks that workers are sent several per message;
    // one missing file among them fails only its own job.
    const files = Array.from({ length: 60 }, (_, i) => {
      const path = join(dir, `p${i}`);
      const data = randomBytes(1000 + i * 37);
      if (i !== 31) writeFileSync(path, data);
      return { path, data };
    });
    let progress = 0;
    const results = await Promise.allSettled(
      files.map((f) => pool.hashStream([{ path: f.path, offset: 0, length: f.data.length }], pl, { padTail: true, onProgress: (n) => (progress += n) })),
    );
    results.forEach((r, i) => {
      if (i === 31) {
        t.equal(r.status, 'rejected', 'the missing file fails');
        return;
      }
      const want = expected(files[i]!.data, pl);
      t.ok(r.status === 'fulfilled' && r.value.pieces.equals(want.pieces) && r.value.paddedTail!.equals(want.paddedTail!), `file ${i} has its own hashes`);
    });
    t.equal(progress, files.reduce((s, f, i) => s + (i === 31 ? 0 : f.data.length), 0), 'progress of every batched task arrives');
  });
}

t.test('bad job counts are usage errors', async (t) => {
  t.throws(() => new HashPool(0), { name: 'PkgError', kind: 'usage' });
});
