// The proxy against a real mirror (`pkgtorrent serve --files`) and a real
// engine (bin/pkgtorrent-bt, libtorrent): which requests go through
// BitTorrent, the store, and everything else passing straight through, and
// what each costs the mirror.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { needBtEngine } from './helpers/oracles.js';
import { startMirror, startPlainMirror, writeTree } from './helpers/mirror.js';
import { startGate, startTestProxy, viaProxy } from './helpers/proxy.js';
import { PIECE_AGENT } from '../src/proxy/mirror-pieces.js';
import { request } from './helpers/server.js';
import { scratch } from './helpers/clients.js';
import { until } from './helpers/poll.js';

t.test('a large package goes through BitTorrent, then the store; small files and metadata go direct', async (t) => {
  if (!needBtEngine(t)) return;
  const big = randomBytes(1_500_000);
  const small = randomBytes(20_000);
  const m = await startMirror(t, { pool: { 'big_1.0_all.deb': big, 'small_1.0_all.deb': small, Packages: 'Package: big\n' } });
  const p = await startTestProxy(t);

  const r1 = await viaProxy(p.url, `${m.url}/pool/big_1.0_all.deb`);
  t.equal(r1.status, 200);
  t.equal(r1.headers['content-length'], String(big.length), 'length announced with the headers');
  t.ok(r1.body.equals(big), 'bytes identical to the mirror');
  t.equal(r1.headers['content-type'], 'application/x-debian-package', 'Content-Type from the file name');
  // No tracker: every piece came from the mirror's HTTP, none by the answer's Range fallback.
  const l1 = await p.line(/big_1\.0_all\.deb 200 bittorrent/);
  t.match(l1, new RegExp(`bytes=${big.length} \\d+ms peers=0 mirror=${big.length} store=0 `));
  t.notMatch(l1, /range=|fallback=/, 'no Range fallback');
  await m.serve.waitFor(/simple\/pool\/big_1\.0_all\.deb 200/);

  const r2 = await viaProxy(p.url, `${m.url}/pool/big_1.0_all.deb`);
  t.ok(r2.body.equals(big), 'repeat: same bytes');
  t.equal(r2.headers['content-type'], 'application/x-debian-package', 'the store answer too');
  await p.line(/big_1\.0_all\.deb 200 store bytes=1500000 \d+ms peers=0 mirror=0 store=1500000$/);
  t.equal(p.packages.started, 1, 'the repeat started no download');

  const r3 = await viaProxy(p.url, `${m.url}/pool/small_1.0_all.deb`);
  t.ok(r3.body.equals(small));
  await p.line(/small_1\.0_all\.deb 200 direct\(small\) bytes=20000 \d+ms peers=0 mirror=20000 store=0$/);
  const r4 = await viaProxy(p.url, `${m.url}/pool/Packages`);
  t.equal(r4.body.toString(), 'Package: big\n');
  await p.line(/pool\/Packages 200 direct bytes=13/);
  const r5 = await viaProxy(p.url, `${m.url}/pool/missing.deb`);
  t.equal(r5.status, 404, "the mirror's 404 passes through");
  const r6 = await viaProxy(p.url, `${m.url}/pool/big_1.0_all.deb`, { range: 'bytes=10-19' });
  t.equal(r6.status, 206, 'a Range request goes direct');
  t.ok(r6.body.equals(big.subarray(10, 20)));
});

t.test('a package through BitTorrent costs the mirror no GET of the file: the lookup, then Range requests for pieces', async (t) => {
  if (!needBtEngine(t)) return;
  const data = randomBytes(600_000);
  const m = await startMirror(t, { pub: { 'x.rpm': data } });
  const gate = await startGate(t, m.url);
  const p = await startTestProxy(t);
  t.ok((await viaProxy(p.url, `${gate.url}/pub/x.rpm`)).body.equals(data));
  await p.line(/x\.rpm 200 bittorrent/);
  const asked = gate.requests.filter((r) => r.path.endsWith('/x.rpm'));
  t.equal(asked[0]?.path, '/pub/torrent_service/simple/pub/x.rpm', 'the service is asked for the torrent first');
  t.notOk(asked[0]?.pieces, 'the lookup is not a request for pieces');
  const pieces = asked.slice(1);
  t.ok(pieces.length > 0, `then ${pieces.length} requests for pieces`);
  t.ok(
    pieces.every((r) => r.method === 'GET' && r.path === '/pub/x.rpm' && r.userAgent === PIECE_AGENT && /^bytes=\d+-\d+$/.test(r.range)),
    `each one a Range GET by the proxy's piece agent: ${JSON.stringify(pieces.filter((r) => r.userAgent !== PIECE_AGENT || !r.range))}`,
  );
  const asks = pieces.map((r) => /^bytes=(\d+)-(\d+)$/.exec(r.range)!).map((x) => ({ from: Number(x[1]), to: Number(x[2]) }));
  t.equal(
    asks.reduce((n, a) => n + a.to - a.from + 1, 0),
    data.length,
    'together they cover the file once',
  );
  // The mirror's own access log agrees: no 200 for the file, only the 206 answers to those Range requests.
  const fileLines = () => m.serve.stderr().split('\n').filter((l) => / \/pub\/x\.rpm /.test(l));
  t.ok(await until(5000, () => fileLines().length === pieces.length), `the mirror logged ${fileLines().length} requests for the file`);
  t.same(
    fileLines().filter((l) => !/ GET \/pub\/x\.rpm 206 /.test(l)),
    [],
    'no plain GET of the file',
  );

  const seen = gate.requests.length;
  t.ok((await viaProxy(p.url, `${gate.url}/pub/x.rpm`)).body.equals(data));
  await p.line(/x\.rpm 200 store/);
  t.same(
    gate.requests.slice(seen).map((r) => r.path),
    ['/pub/torrent_service/simple/pub/x.rpm'],
    'from the store: only the lookup',
  );
});

t.test('torrents without a tracker: the mirror is the only source, and the proxy says so once', async (t) => {
  if (!needBtEngine(t)) return;
  const files = { 'a.rpm': randomBytes(200_000), 'b.rpm': randomBytes(200_000) };
  const m = await startMirror(t, { pub: files });
  const p = await startTestProxy(t);
  for (const name of ['a.rpm', 'b.rpm'] as const) {
    t.ok((await viaProxy(p.url, `${m.url}/pub/${name}`)).body.equals(files[name]));
    await p.line(new RegExp(`${name.replace('.', '\\.')} 200 bittorrent`));
  }
  const host = new URL(m.url).host;
  const warnings = p.log.filter((l) => /name no tracker and --lpd\/--dht are off/.test(l));
  t.equal(warnings.length, 1, 'one warning for two packages of one mirror');
  t.match(warnings[0], `pkgtorrent: torrents from ${host} name no tracker and --lpd/--dht are off`);
  t.ok(p.log.indexOf(warnings[0]!) < p.log.findIndex((l) => / 200 bittorrent /.test(l)), 'before the first answer is logged');
});

t.test('a mirror without the service: direct, and the prefix is remembered', async (t) => {
  if (!needBtEngine(t)) return;
  const root = scratch(t, 'plain');
  const data = randomBytes(300_000);
  writeTree(root, { pub: { 'a.rpm': data, 'b.rpm': data } });
  const m = await startPlainMirror(t, root);
  const p = await startTestProxy(t);
  t.ok((await viaProxy(p.url, `${m.url}/pub/a.rpm`)).body.equals(data));
  t.ok((await viaProxy(p.url, `${m.url}/pub/b.rpm`)).body.equals(data));
  t.match(await p.line(/a\.rpm 200 direct\(service answered 404\)/), /bytes=300000 \d+ms peers=0 mirror=300000 store=0/);
  await p.line(/b\.rpm 200 direct\(no service\)/);
  t.same(
    m.requests,
    ['GET /pub/torrent_service/simple/pub/a.rpm', 'GET /pub/a.rpm', 'GET /pub/b.rpm'],
    'the service asked first, once for the prefix; then each file once',
  );
});

t.test('a replaced file on the mirror is never answered from the store', async (t) => {
  if (!needBtEngine(t)) return;
  const v1 = randomBytes(400_000);
  const v2 = randomBytes(400_000);
  const m = await startMirror(t, { pub: { 'x.rpm': v1 } });
  const p = await startTestProxy(t);
  t.ok((await viaProxy(p.url, `${m.url}/pub/x.rpm`)).body.equals(v1));
  t.ok((await viaProxy(p.url, `${m.url}/pub/x.rpm`)).body.equals(v1));
  await p.line(/x\.rpm 200 store/);
  // As mirrors change files: a new file renamed over the old one (same size).
  writeFileSync(join(m.root, 'pub/.x.rpm.new'), v2);
  renameSync(join(m.root, 'pub/.x.rpm.new'), join(m.root, 'pub/x.rpm'));
  const r = await viaProxy(p.url, `${m.url}/pub/x.rpm`);
  t.ok(r.body.equals(v2), 'the new file, not the stored old one');
  t.equal(await p.count(/\/x\.rpm 200 bittorrent/, 2), 2, 'downloaded again');
});

t.test('a package larger than the store still answers, direct', async (t) => {
  if (!needBtEngine(t)) return;
  const data = randomBytes(300_000);
  const m = await startMirror(t, { pub: { 'x.rpm': data } });
  const p = await startTestProxy(t, { storeSize: 200_000 });
  t.ok((await viaProxy(p.url, `${m.url}/pub/x.rpm`)).body.equals(data));
  await p.line(/x\.rpm 200 direct\(larger than the store\)/);
});

t.test('the store keeps at most store-size bytes, least recently used out first', async (t) => {
  if (!needBtEngine(t)) return;
  const files = { 'a.rpm': randomBytes(200_000), 'b.rpm': randomBytes(200_000), 'c.rpm': randomBytes(200_000) };
  const m = await startMirror(t, { pub: files });
  const p = await startTestProxy(t, { storeSize: 450_000 });
  for (const name of ['a.rpm', 'b.rpm', 'a.rpm', 'c.rpm']) t.ok((await viaProxy(p.url, `${m.url}/pub/${name}`)).body.equals(files[name as 'a.rpm']));
  // A download enters the store just after its last bytes went out.
  const stored = () => readdirSync(join(p.store, 'done')).filter((n) => !n.startsWith('.')).length;
  await until(5000, () => stored() === 2 && p.log.filter((l) => /\/c\.rpm 200/.test(l)).length === 1);
  t.equal(stored(), 2, 'two of three fit');
  t.ok((await viaProxy(p.url, `${m.url}/pub/a.rpm`)).body.equals(files['a.rpm']));
  t.equal(await p.count(/\/a\.rpm 200 store/, 2), 2, 'a (used recently) stayed');
  t.ok((await viaProxy(p.url, `${m.url}/pub/b.rpm`)).body.equals(files['b.rpm']));
  t.equal(await p.count(/\/b\.rpm 200 bittorrent/, 2), 2, 'b (least recently used) was evicted');
});

t.test('mirror mode, CONNECT tunnel, and refusals', async (t) => {
  if (!needBtEngine(t)) return;
  const data = randomBytes(300_000);
  const m = await startMirror(t, { pub: { 'x.rpm': data, 'repomd.xml': '<repomd/>' } });
  const p = await startTestProxy(t, { mirrors: [`m1=${m.url}/pub`] });
  const r = await request(p.url, '/m1/x.rpm');
  t.ok(r.body.equals(data), 'mirror mode: /NAME/<path> is URL/<path>');
  await p.line(/GET http:\/\/127\.0\.0\.1:\d+\/pub\/x\.rpm 200 bittorrent/);
  t.equal((await request(p.url, '/m1/repomd.xml')).body.toString(), '<repomd/>');
  const none = await request(p.url, '/nope/x.rpm');
  t.equal(none.status, 404);
  t.match(none.body.toString(), /not a proxy request/);
  t.match(none.headers['content-type'], /text\/plain/);
  t.equal((await viaProxy(p.url, 'https://example.invalid/x.rpm')).status, 400, 'https only through CONNECT');

  // CONNECT to the mirror's port, then plain HTTP through the tunnel.
  const port = new URL(m.url).port;
  const answer = await new Promise<string>((resolve, reject) => {
    const s = connect(Number(new URL(p.url).port), '127.0.0.1', () => s.write(`CONNECT 127.0.0.1:${port} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`));
    let text = '';
    let asked = false;
    s.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (!asked && text.includes('\r\n\r\n')) {
        asked = true;
        s.write(`GET /pub/repomd.xml HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      }
    });
    s.on('end', () => resolve(text));
    s.on('error', reject);
  });
  t.match(answer, /^HTTP\/1\.1 200 Connection Established\r\n\r\nHTTP\/1\.1 200 .*<repomd\/>$/s, 'tunnel relays the bytes');
  await p.line(/CONNECT 127\.0\.0\.1:\d+ 200 tunnel bytes=\d+/);
});

t.test('allow-host and allow-from', async (t) => {
  if (!needBtEngine(t)) return;
  const m = await startMirror(t, { pub: { 'a.txt': 'hi' } });
  const p = await startTestProxy(t, { allowHosts: ['localhost'] });
  const r = await viaProxy(p.url, `${m.url}/pub/a.txt`);
  t.equal(r.status, 403);
  t.match(r.body.toString(), /not allowed by --allow-host/);
  t.ok((await viaProxy(p.url, `${m.url.replace('127.0.0.1', 'localhost')}/pub/a.txt`)).body.equals(Buffer.from('hi')));
  await t.rejects(startTestProxy(t, { host: '0.0.0.0' }), { message: /needs --allow-from/ }, 'never an open proxy');
  await t.rejects(startTestProxy(t, { host: '0.0.0.0', allowFrom: ['10.0.0.0/33'] }), { message: /invalid --allow-from/ });
});

t.test('package patterns: packages yes, repository metadata no', async (t) => {
  const { packageMatcher } = await import('../src/proxy/patterns.js');
  const is = packageMatcher([]);
  for (const p of ['/f/x-1.0.rpm', '/f/x.drpm', '/d/pool/x_1_amd64.deb', '/d/x.udeb', '/d/x.ddeb', '/a/x-1-x86_64.pkg.tar.zst', '/al/x-1.apk']) t.ok(is(p), p);
  for (const p of ['/f/repodata/repomd.xml', '/d/dists/x/InRelease', '/d/dists/x/main/binary-amd64/Packages.xz', '/a/core.db', '/f/x.rpm/', '/f/rpm']) t.notOk(is(p), p);
  t.ok(packageMatcher(['*.iso'])('/x/big.iso'), 'configurable');
  t.notOk(packageMatcher(['*.iso'])('/x/a.rpm'));
});

t.test('hostile input: a clear 4xx, never a crash', async (t) => {
  if (!needBtEngine(t)) return;
  const m = await startMirror(t, { pub: { 'a.txt': 'hi' } });
  const p = await startTestProxy(t);
  // Written, not ended: a half-closed client gets no answer from node:http.
  const raw = (text: string) =>
    new Promise<string>((resolve) => {
      const s = connect(Number(new URL(p.url).port), '127.0.0.1', () => s.write(text));
      let out = '';
      s.on('data', (c: Buffer) => (out += c.toString('latin1')));
      s.on('close', () => resolve(out));
      s.on('error', () => resolve(out));
    });
  t.match(await raw('GET http://[nonsense/x HTTP/1.1\r\nHost: x\r\n\r\n'), /^HTTP\/1\.1 400 /);
  t.match(await raw('\x00\x01garbage\r\n\r\n'), /^HTTP\/1\.1 400 /);
  t.match(await raw('CONNECT nohostport HTTP/1.1\r\n\r\n'), /^HTTP\/1\.1 400 /);
  t.match(await raw('GET http://127.0.0.1:1/pub/x.rpm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), /^HTTP\/1\.1 502 [^]*mirror unreachable/, 'a dead mirror: 502 with a reason');
  t.ok((await viaProxy(p.url, `${m.url}/pub/a.txt`)).body.equals(Buffer.from('hi')), 'still serving');
});
