// `pkgtorrent serve` over real HTTP against a real process: the yum-torrent
// conversation, simple mode, null files, static files, the access log.
import t, { type Test } from 'tap';
import bencode from 'bencode';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:net';
import { decodeTorrent } from './helpers/bencode.js';
import { digestOf, postPaths, request, startServe, type HttpResponse, type ServeProcess } from './helpers/server.js';

const sha1hex = (s: string | Buffer) => createHash('sha1').update(s).digest('hex');

const SIZES = { a: 70_000, b: 20_000, c: 33_000, y: 100 };
const PL = 16384;

const dir = t.testdir({
  root: {
    pub: {
      x: {
        'a+1.rpm': randomBytes(SIZES.a),
        'b.rpm': randomBytes(SIZES.b),
        'c d~1.2-3.el9.noarch.rpm': randomBytes(SIZES.c),
        '.hidden': 'hidden',
      },
    },
    other: { 'y.rpm': randomBytes(SIZES.y) },
  },
  cache: {},
  trackers: 'http://tracker.one/announce\n# a comment\n\nudp://tracker.two:6969/announce\nnot a url\n',
});
const root = join(dir, 'root');

let srv: ServeProcess;
t.before(async () => {
  // --revalidate 0: every GET checks the files, so a changed one shows at once.
  srv = await startServe(null, { root, cacheDir: join(dir, 'cache'), trackers: join(dir, 'trackers'), files: true, args: ['--revalidate', '0'], inProcess: true });
});
t.teardown(() => srv?.stop());

/** The info hash the way a client computes it: over the info dictionary's bytes. */
function infoHashOf(torrent: Buffer): string {
  const raw = bencode.decode(torrent) as { info: unknown };
  return sha1hex(Buffer.from(bencode.encode(raw.info)));
}

function checkTorrentHeaders(tt: Test, r: HttpResponse) {
  tt.equal(r.status, 200, r.body.toString());
  tt.equal(r.headers['content-type'], 'application/x-bittorrent');
  tt.equal(r.headers['content-disposition'], `attachment; filename=${infoHashOf(r.body)}.torrent`, 'exact, unquoted form');
  tt.equal(Number(r.headers['content-length']), r.body.length);
}

const PATHS = ['/pub/x/a%2B1.rpm', '/pub/x/b.rpm', '/pub/x/c%20d~1.2-3.el9.noarch.rpm'];

t.test('the digest conversation: 412, POST, then the cached torrent', async (t) => {
  const digest = digestOf(PATHS);
  const url = `/mirror/torrent_service/digest/${digest}`;

  const first = await request(srv.url, url);
  t.equal(first.status, 412);
  t.equal(first.headers['cache-control'], 'no-cache, no-store, must-revalidate');
  t.equal(first.headers.pragma, 'no-cache');
  t.equal(first.headers.expires, '0');

  const posted = await postPaths(srv.url, 'mirror', PATHS, digest);
  checkTorrentHeaders(t, posted);
  const tor = decodeTorrent(posted.body);
  t.equal(tor.info.name, 'pub');
  t.equal(tor.info['piece length'], PL);
  const padA = PL - (SIZES.a % PL);
  const padB = PL - (SIZES.b % PL);
  t.same(
    tor.info.files.map((f: { path: string[]; length: number; attr?: string }) => [f.path.join('/'), f.length, f.attr ?? '']),
    [
      ['x/a+1.rpm', SIZES.a, ''],
      [`torrent_service/nullfile/${padA}_0`, padA, 'p'],
      ['x/b.rpm', SIZES.b, ''],
      [`torrent_service/nullfile/${padB}_0`, padB, 'p'],
      ['x/c d~1.2-3.el9.noarch.rpm', SIZES.c, ''],
    ],
  );
  t.same(tor['url-list'], [`${srv.url}/`], 'web seed is the mirror root, from the Host header');
  t.same(tor['announce-list'].flat().sort(), ['http://tracker.one/announce', 'udp://tracker.two:6969/announce'], 'invalid line skipped');
  t.equal(tor.announce, tor['announce-list'][0][0], 'announce is the first tier');

  const again = await request(srv.url, url);
  checkTorrentHeaders(t, again);
  t.ok(again.body.equals(posted.body), 'GET answers the same bytes from the cache');
  const head = await request(srv.url, url, { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(Number(head.headers['content-length']), posted.body.length);
  t.equal(head.body.length, 0);

  // Any prefix, and a service segment encoded more than it must be.
  const other = await request(srv.url, `/x/torrent%5Fservice/digest/${digest.toUpperCase()}`);
  t.ok(other.body.equals(posted.body), 'routes on the decoded path, any prefix');
});

t.test('names yum uses, percent-encoded or not, give the same torrent', async (t) => {
  const plain = ['/pub/x/a+1.rpm', '/pub/x/b.rpm'];
  const encoded = ['/pub/x/a%2B1.rpm', '/pub/x/b.rpm'];
  const r1 = await postPaths(srv.url, 'pub', plain, digestOf(plain));
  const r2 = await postPaths(srv.url, 'pub', encoded, digestOf(encoded));
  checkTorrentHeaders(t, r1);
  checkTorrentHeaders(t, r2);
  t.equal(infoHashOf(r1.body), infoHashOf(r2.body));
  t.same(decodeTorrent(r1.body).info.files[0].path, ['x', 'a+1.rpm'], "'+' is a plus in a path, not a space");
});

t.test('bad digest requests', async (t) => {
  const cases: Array<[string, string[], string, number, RegExp]> = [
    ['digest mismatch', PATHS, digestOf(['/pub/x/b.rpm']), 400, /digest does not match/],
    ['different first segments', ['/other/y.rpm', '/pub/x/b.rpm'], '', 400, /different first segments/],
    ['missing file', ['/pub/x/nope.rpm'], '', 404, /nope\.rpm: no such file/],
    ['file at the top of the root', ['/toplevel.rpm'], '', 400, /top of the root/],
    ['relative path', ['pub/x/b.rpm'], '', 400, /must start with \//],
    ['duplicate path', ['/pub/x/b.rpm', '/pub/x/b.rpm'], '', 400, /listed twice/],
  ];
  for (const [name, paths, digest, status, re] of cases) {
    const r = await postPaths(srv.url, 'pub', paths, digest || digestOf(paths));
    t.equal(r.status, status, name);
    t.match(r.body.toString(), re, name);
    t.match(r.headers['content-type'], /^text\/plain/, name);
  }
  const malformed = await request(srv.url, '/pub/torrent_service/digest/xyz');
  t.equal(malformed.status, 400, 'malformed digest');
  const put = await request(srv.url, `/pub/torrent_service/digest/${digestOf(PATHS)}`, { method: 'PUT' });
  t.equal(put.status, 405);
  t.equal(put.headers.allow, 'GET, HEAD, POST');
  const empty = await request(srv.url, `/pub/torrent_service/digest/${digestOf([])}`, { method: 'POST', body: '' });
  t.equal(empty.status, 400, 'no p fields');
  const json = await request(srv.url, `/pub/torrent_service/digest/${digestOf(PATHS)}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: '{}',
  });
  t.equal(json.status, 400, 'not a form');
  const badHost = await request(srv.url, `/pub/torrent_service/digest/${digestOf(PATHS)}`, { headers: { Host: 'evil host/<x>' } });
  t.equal(badHost.status, 400, 'invalid Host is refused, not put in a web seed');
});

t.test('simple mode: one file, its alias, and globs', async (t) => {
  const one = await request(srv.url, '/pub/torrent_service/simple/pub/x/b.rpm');
  checkTorrentHeaders(t, one);
  const tor = decodeTorrent(one.body);
  t.equal(tor.info.name, 'b.rpm');
  t.equal(tor.info.length, SIZES.b);
  t.notOk(tor.info.files);
  t.equal(tor.info.pieces.length, 20 * Math.ceil(SIZES.b / PL), 'no padding');
  t.same(tor['url-list'], [`${srv.url}/pub/x/`], 'web seed is the directory of the file');
  const alias = await request(srv.url, '/pub/torrent_service/single/pub/x/b.rpm');
  t.ok(alias.body.equals(one.body), 'single/ is the same');

  const spaced = decodeTorrent((await request(srv.url, '/pub/torrent_service/simple/pub/x/c%20d~1.2-3.el9.noarch.rpm')).body);
  t.equal(spaced.info.name, 'c d~1.2-3.el9.noarch.rpm');

  const glob = await request(srv.url, '/pub/torrent_service/simple/pub/x/*.rpm');
  checkTorrentHeaders(t, glob);
  const multi = decodeTorrent(glob.body);
  t.equal(multi.info.name, 'pub');
  t.same(
    multi.info.files.filter((f: { attr?: string }) => !f.attr).map((f: { path: string[] }) => f.path.join('/')),
    ['x/a+1.rpm', 'x/b.rpm', 'x/c d~1.2-3.el9.noarch.rpm'],
    'sorted, hidden files not matched',
  );
  t.same(multi['url-list'], [`${srv.url}/`]);
  const oneMatch = await request(srv.url, '/pub/torrent_service/simple/pub/x/b.r%3Fm');
  t.ok(oneMatch.body.equals(one.body), 'a glob with one match is the single-file torrent');

  t.equal((await request(srv.url, '/pub/torrent_service/simple/pub/x/*.deb')).status, 404, 'no match');
  t.equal((await request(srv.url, '/pub/torrent_service/simple/pub/x/nope.rpm')).status, 404);
  t.equal((await request(srv.url, '/pub/torrent_service/simple/pub/x')).status, 404, 'a directory');
  t.equal((await request(srv.url, '/pub/torrent_service/simple/**/*.rpm')).status, 400, 'glob across first segments');
  t.equal((await request(srv.url, '/pub/torrent_service/simple/pub/x/b.rpm', { method: 'POST', body: 'p=1' })).status, 405);
});

t.test('null files: sizes, Range, HEAD, the piece-length cap', async (t) => {
  for (const size of [0, 1, 1000, PL]) {
    const r = await request(srv.url, `/pub/torrent_service/nullfile/${size}_0`);
    t.equal(r.status, 200, `size ${size}`);
    t.equal(r.headers['content-type'], 'application/octet-stream');
    t.equal(r.body.length, size);
    t.ok(r.body.equals(Buffer.alloc(size)), 'zeros');
  }
  const enc = await request(srv.url, '/yum/torrent%5Fservice/nullfile/145%5F3');
  t.equal(enc.status, 200, 'Transmission-style encoding');
  t.equal(enc.body.length, 145);
  const range = await request(srv.url, '/pub/torrent_service/nullfile/1000_0', { headers: { Range: 'bytes=100-199' } });
  t.equal(range.status, 206);
  t.equal(range.headers['content-range'], 'bytes 100-199/1000');
  t.equal(range.body.length, 100);
  const suffix = await request(srv.url, '/pub/torrent_service/nullfile/1000_0', { headers: { Range: 'bytes=-10' } });
  t.equal(suffix.headers['content-range'], 'bytes 990-999/1000');
  const bad = await request(srv.url, '/pub/torrent_service/nullfile/1000_0', { headers: { Range: 'bytes=5000-6000' } });
  t.equal(bad.status, 416);
  t.equal(bad.headers['content-range'], 'bytes */1000');
  const head = await request(srv.url, '/pub/torrent_service/nullfile/1000_0', { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(head.headers['content-length'], '1000');
  t.equal(head.body.length, 0);
  t.equal((await request(srv.url, `/pub/torrent_service/nullfile/${PL + 1}_0`)).status, 403, 'above the piece length');
  t.equal((await request(srv.url, '/pub/torrent_service/nullfile/99999999999999999999999_0')).status, 403);
  t.equal((await request(srv.url, '/pub/torrent_service/nullfile/abc')).status, 404);
  t.equal((await request(srv.url, '/pub/torrent_service/nullfile/10_0', { method: 'DELETE' })).status, 405);
});

t.test('static files with --files: Range, validators, conditional requests', async (t) => {
  const full = await request(srv.url, '/pub/x/b.rpm');
  t.equal(full.status, 200);
  t.ok(full.body.equals(readFileSync(join(root, 'pub/x/b.rpm'))), 'the bytes of the file');
  t.equal(full.headers['content-type'], 'application/x-redhat-package-manager', 'type from the file name');
  t.ok(full.headers.etag && full.headers['last-modified'], 'validators');
  t.equal((await request(srv.url, '/pub/x/b.rpm')).headers.etag, full.headers.etag, 'the same validator each time');
  const part = await request(srv.url, '/pub/x/b.rpm', { headers: { Range: 'bytes=10-19' } });
  t.equal(part.status, 206);
  t.ok(part.body.equals(full.body.subarray(10, 20)));
  const cond = await request(srv.url, '/pub/x/b.rpm', { headers: { 'If-None-Match': String(full.headers.etag) } });
  t.equal(cond.status, 304);
  const head = await request(srv.url, '/pub/x/a%2B1.rpm', { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(Number(head.headers['content-length']), SIZES.a);
  t.equal((await request(srv.url, '/pub/x/.hidden')).status, 403, 'no hidden files');
  t.equal((await request(srv.url, '/pub/x/')).status, 404, 'no directory listings');
  t.equal((await request(srv.url, '/pub/x/b.rpm', { method: 'POST' })).status, 405);
});

t.test('a changed package gives a new torrent', async (t) => {
  const paths = ['/other/y.rpm'];
  const digest = digestOf(paths);
  const url = `/other/torrent_service/digest/${digest}`;
  const before = await postPaths(srv.url, 'other', paths, digest);
  t.equal(before.status, 200);
  t.equal((await request(srv.url, url)).status, 200, 'cached');
  writeFileSync(join(root, 'other/y.rpm'), randomBytes(SIZES.y + 7));
  // With --revalidate 0 every GET re-checks the entry's files.
  t.equal((await request(srv.url, url)).status, 412, 'the stale entry is not served, at once');
  const after = await postPaths(srv.url, 'other', paths, digest);
  t.equal(after.status, 200);
  t.not(infoHashOf(after.body), infoHashOf(before.body));
  t.equal(decodeTorrent(after.body).info.files[0].length, SIZES.y + 7);
  t.ok((await request(srv.url, url)).body.equals(after.body), 'the new torrent is cached');
});

t.test('by default a hot entry skips the stat check for 1s, and never longer', async (t) => {
  const s0 = await startServe(t, { root, cacheDir: join(dir, 'cache'), inProcess: true });
  const paths = ['/pub/x/b.rpm'];
  const digest = digestOf(paths);
  const url = `/pub/torrent_service/digest/${digest}`;
  t.equal((await postPaths(s0.url, 'pub', paths, digest)).status, 200);
  t.equal((await request(s0.url, url)).status, 200);
  writeFileSync(join(root, 'pub/x/b.rpm'), randomBytes(SIZES.b));
  t.equal((await request(s0.url, url)).status, 200, 'inside the window: the old torrent, as documented');
  await new Promise((r) => setTimeout(r, 1100));
  t.equal((await request(s0.url, url)).status, 412, 'after the window: checked again');
});

t.test('access log: one line per request', async (t) => {
  await request(srv.url, '/pub/torrent_service/nullfile/7_0');
  await srv.waitFor(/GET \/pub\/torrent_service\/nullfile\/7_0 200 7 \d+\.\dms\n/);
  const line = srv.stderr().split('\n').find((l) => l.includes('/nullfile/7_0'))!;
  t.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z GET \/pub\/torrent_service\/nullfile\/7_0 200 7 \d+\.\dms$/);
  await request(srv.url, '/pub/x/%0Aforged%20200');
  await srv.waitFor(/%0Aforged/);
  t.notMatch(srv.stderr(), /\nforged/, 'a newline in a path cannot forge a log line');
  t.notMatch(srv.stderr(), /\n\s+at /, 'no stack traces');
});

t.test('access log: an answer the client cut off is marked with "!" after its status', async (t) => {
  // 64 MiB (a sparse file) cannot sit in the kernel's socket buffers, so the
  // answer is still being written when the client goes away.
  writeFileSync(join(root, 'pub', 'big.bin'), '');
  truncateSync(join(root, 'pub', 'big.bin'), 64 * 1024 * 1024);
  t.teardown(() => rmSync(join(root, 'pub', 'big.bin')));
  const { port } = new URL(srv.url);
  await new Promise<void>((resolve, reject) => {
    const sock = connect(Number(port), '127.0.0.1', () => sock.write('GET /pub/big.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'));
    sock.once('data', () => {
      sock.destroy();
      resolve();
    });
    sock.on('error', reject);
  });
  await srv.waitFor(/GET \/pub\/big\.bin 200! \d+ /);
  const sent = Number(/GET \/pub\/big\.bin 200! (\d+) /.exec(srv.stderr())![1]);
  t.ok(sent < 64 * 1024 * 1024, `logged as cut off, with the bytes really sent (${sent}), not the declared 64 MiB`);
});
