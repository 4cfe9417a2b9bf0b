// Answers for failures: a bug is a 500 whose stack is logged once, a client
// error a short reason; request text in log lines cannot forge lines.
import t from 'tap';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PkgError } from '../src/core/errors.js';
import { printable } from '../src/service/printable.js';
import { tenths } from '../src/service/access-log.js';
import { sendError } from '../src/service/respond.js';
import { request } from './helpers/server.js';

t.test('an internal error: 500 "internal error", its stack logged once, then one line each time', async (t) => {
  const log: string[] = [];
  const bug = new Error('boom');
  const server = createServer((req, res) => sendError(req, res, req.url === '/bug' ? bug : new PkgError('not-found', '/x: no such file'), (l) => log.push(l)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const first = await request(url, '/bug');
  t.equal(first.status, 500);
  t.equal(first.body.toString(), 'internal error\n', 'the client sees no details');
  await request(url, '/bug');
  t.equal(log.length, 2);
  t.match(log[0], /^internal error on GET \/bug: Error: boom\n\s+at /, 'the first time: with its stack');
  t.equal(log[1], 'internal error on GET /bug: boom (stack logged before)', 'after that: one line');
  const missing = await request(url, '/missing');
  t.equal(missing.status, 404);
  t.equal(missing.body.toString(), '/x: no such file\n');
  t.equal(log.length, 2, 'a client error is not logged here (the access log has it)');
});

t.test('out of file descriptors is load: 503 with Retry-After and one log line, no stack', async (t) => {
  const log: string[] = [];
  const emfile = Object.assign(new Error("EMFILE: too many open files, open '/srv/mirror/pub/x.rpm'"), { code: 'EMFILE', errno: -24 });
  const server = createServer((req, res) => sendError(req, res, emfile, (l) => log.push(l)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const r = await request(url, '/pub/torrent_service/simple/pub/x.rpm');
  t.equal(r.status, 503);
  t.equal(r.headers['retry-after'], '5');
  t.match(r.body.toString(), /^out of file descriptors \(EMFILE\): try again shortly/);
  t.notMatch(r.body.toString(), /srv\/mirror/, 'no absolute path to the client');
  t.equal(log.length, 1, 'one line');
  t.notMatch(log[0], /\n\s+at /, 'no stack');
});

t.test('printable: request text cannot break or forge a log line', async (t) => {
  t.equal(printable('/pub/x.rpm'), '/pub/x.rpm', 'plain text as it is');
  t.equal(printable('/a b\r\nGET /forged'), '/a%20b%0D%0AGET%20/forged', 'spaces and line breaks escaped');
  t.equal(printable('x'.repeat(3000)).length, 2048, 'capped');
});

t.test("tenths: the access log's duration, as toFixed(1) writes it", async (t) => {
  for (const ms of [0, 0.04, 0.06, 1, 1.25, 9.99, 12.3, 999.96, 123456.78]) t.equal(tenths(ms), ms.toFixed(1), String(ms));
  // Off by at most half a tenth elsewhere (toFixed and Math.round may differ on a binary tie such as 0.95).
  const wrong: string[] = [];
  for (let i = 0; i < 10_000; i++) {
    const ms = Math.random() * 10 ** (i % 6);
    const text = tenths(ms);
    if (!/^\d+\.\d$/.test(text) || Math.abs(Number(text) - ms) > 0.0500001) wrong.push(`${ms} -> ${text}`);
  }
  t.same(wrong, [], 'every random duration within half a tenth, in the form d.d');
});
