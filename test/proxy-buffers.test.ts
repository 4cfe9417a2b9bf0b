// Verified pieces are sent from reused buffers: a buffer goes back to its
// pool only when neither the window of recent pieces nor any socket write
// holds it, so a slow client never sees a later piece's bytes in place of
// the ones it was sent.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { needBtEngine } from './helpers/oracles.js';
import { startMirror } from './helpers/mirror.js';
import { startTestProxy, viaProxy } from './helpers/proxy.js';
import { HeldPiece, PiecePool } from '../src/proxy/piece-buffers.js';

t.test('a buffer is reused only after the window and every lease let go', async (t) => {
  const pool = new PiecePool(4, 8);
  const buf = pool.take();
  buf.write('abcd');
  const piece = new HeldPiece(buf, 3, pool);
  const a = piece.lease(1);
  t.equal(a.data.toString(), 'bc', 'from the offset to the piece length');
  piece.drop();
  t.not(pool.take(), buf, 'still leased: the pool hands out another buffer');
  a.release();
  a.release(); // once only: a second call must not free it for someone else
  t.equal(pool.take(), buf, 'released: reused');
  t.not(pool.take(), buf, 'and handed out once');
});

t.test('a pool keeps no more than it is told', async (t) => {
  const pool = new PiecePool(4, 1);
  const [x, y] = [pool.take(), pool.take()];
  pool.give(x);
  pool.give(y);
  t.equal(pool.take(), x);
  t.not(pool.take(), y, 'the second was left to the garbage collector');
});

/** GET through the proxy, reading nothing for `pauseMs` after the headers. */
function slowGet(proxy: string, url: string, pauseMs: number): Promise<Buffer> {
  const p = new URL(proxy);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: p.hostname, port: p.port, path: url, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.pause();
      setTimeout(() => res.resume(), pauseMs);
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('more pieces than the window, a fast and a stalled client: both get the file exactly', async (t) => {
  if (!needBtEngine(t)) return;
  // 16K pieces, a window of 4 of them: a piece still queued on the stalled
  // client's socket leaves the window long before that client reads it.
  const data = randomBytes(8 * 1024 * 1024);
  const m = await startMirror(t, { pub: { 'big.rpm': data } });
  const p = await startTestProxy(t, { heldBytes: 64 * 1024 });
  const [slow, fast] = await Promise.all([slowGet(p.url, `${m.url}/pub/big.rpm`, 1500), viaProxy(p.url, `${m.url}/pub/big.rpm`)]);
  t.ok(fast.body.equals(data), 'fast client: identical');
  t.ok(slow.equals(data), 'stalled client: identical');
  t.equal(p.packages.started, 1, 'one download for both');
  t.equal(await p.count(/big\.rpm 200 bittorrent bytes=8388608 /, 2), 2, 'both through the one download');
  t.notOk(p.log.some((l) => /range=|fallback=/.test(l)), 'no Range fallback');
});
