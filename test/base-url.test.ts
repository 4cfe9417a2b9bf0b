// The host of web-seed URLs: every Host a browser or curl sends for a name
// that resolves is taken (docker-compose names with underscores above all:
// a 400 there makes yum-torrent fall back to plain HTTP without a word), and
// only what a URL's host cannot carry is refused, with the reason.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { baseUrlFor, checkHost } from '../src/service/base-url.js';
import { PkgError } from '../src/core/errors.js';
import { decodeTorrent } from './helpers/bencode.js';
import { request, startServe } from './helpers/server.js';

/** A request as base-url.ts sees it: headers and whether the socket is TLS. */
const req = (headers: Record<string, string>, encrypted = false) => ({ headers, socket: { encrypted } });

// [Host header, the host that goes into http://HOST/]
const ACCEPTED: Array<[string, string]> = [
  ['yum_mirror:8080', 'yum_mirror:8080'],
  ['yum_mirror', 'yum_mirror'],
  ['_mirror._tcp.example', '_mirror._tcp.example'],
  ['Mirror.Example.COM', 'mirror.example.com'],
  ['MIRROR_1:8080', 'mirror_1:8080'],
  ['mirror.example.', 'mirror.example.'],
  ['mirror.example.:8080', 'mirror.example.:8080'],
  ['localhost', 'localhost'],
  ['127.0.0.1:8080', '127.0.0.1:8080'],
  ['10.1.2.3', '10.1.2.3'],
  ['[::1]:8080', '[::1]:8080'],
  ['[::1]', '[::1]'],
  ['[FE80::1]', '[fe80::1]'],
  ['[2001:db8:0:0::1]:443', '[2001:db8::1]:443'],
  ['[::ffff:192.0.2.1]', '[::ffff:c000:201]'],
  ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
  ['a-b.c-d.example:65535', 'a-b.c-d.example:65535'],
  ['mirror:1', 'mirror:1'],
  // Normalised as every URL parser does, so the web seed is the URL clients use.
  ['mirror:80', 'mirror'],
  ['mirror:', 'mirror'],
  ['mirror:08080', 'mirror:8080'],
  ['127.1', '127.0.0.1'],
  ['host~1', 'host~1'],
  [`${'a'.repeat(63)}.example`, `${'a'.repeat(63)}.example`],
  [`${'a.'.repeat(126)}b`, `${'a.'.repeat(126)}b`],
  [`${'a.'.repeat(126)}b.`, `${'a.'.repeat(126)}b.`],
];

// [Host header, what the 400 says]
const REFUSED: Array<[string, RegExp]> = [
  ['', /empty/],
  ['evil host', /whitespace/],
  ['evil\thost', /whitespace/],
  ['a\u0000b', /control character \(U\+0000\)/],
  ['a\u001bb', /control character \(U\+001B\)/],
  ['a\u007fb', /control character \(U\+007F\)/],
  ['mirror/x', /contains '\/'/],
  ['mirror?x', /contains '\?'/],
  ['mirror#x', /contains '#'/],
  ['user@mirror', /contains '@'/],
  ['mirror\\x', /contains '\\'/],
  ['mirror%2ex', /contains '%'/],
  ['[fe80::1%25eth0]', /contains '%'/],
  ['x"y', /contains '"'/],
  ['a<b>', /contains '<'/],
  ['a{b}', /contains '\{'/],
  ['a|b', /contains '\|'/],
  ['a^b', /contains '\^'/],
  ['a`b', /contains '`'/],
  ['mirror:0', /port 0 is out of range/],
  ['mirror:65536', /port 65536 is out of range/],
  ['mirror:99999999', /out of range/],
  ['mirror:http', /port 'http' is not a number/],
  ['mirror:-1', /not a number/],
  [':8080', /host name is empty/],
  ['::1', /IPv6 address must be in brackets/],
  ['[::1', /in brackets/],
  ['[::1]x', /in brackets/],
  ['[::1]:99999', /out of range/],
  ['[not:an:ip]', /is not an IPv6 address/],
  ['[]', /is not an IPv6 address/],
  ['a..b', /empty label/],
  ['.mirror', /empty label/],
  ['.', /empty label/],
  [`${'a'.repeat(64)}.example`, /label .* longer than 63/],
  [`${'a.'.repeat(127)}b`, /longer than 253/],
  [`${'a'.repeat(2000)}`, /longer than 1024/],
  ['1.2.3.256', /not a valid IPv4 address/],
  ['mirror.123', /not a valid IPv4 address/],
  ['bücher.example', /non-ASCII .*xn--/],
];

t.test('Host values a client sends for a name that resolves are taken', async (t) => {
  for (const [host, want] of ACCEPTED) {
    t.equal(baseUrlFor(req({ host }), { trustProxy: false }), `http://${want}`, JSON.stringify(host));
  }
  // The scheme's own default port is the one left out.
  t.equal(baseUrlFor(req({ host: 'mirror:443' }, true), { trustProxy: false }), 'https://mirror');
  t.equal(baseUrlFor(req({ host: 'mirror:80' }, true), { trustProxy: false }), 'https://mirror:80');
});

t.test('Host values a URL cannot carry are refused with the reason', async (t) => {
  for (const [host, why] of REFUSED) {
    const name = JSON.stringify(host.length > 40 ? host.slice(0, 40) + '...' : host);
    t.match(checkHost(host, 'http'), { ok: false, why }, name);
    let err: unknown;
    try {
      baseUrlFor(req({ host }), { trustProxy: false });
    } catch (e) {
      err = e;
    }
    t.ok(err instanceof PkgError && err.kind === 'bad-request', `${name}: a bad-request error`);
    t.match((err as Error).message, /^invalid Host header: /, `${name}: names the header`);
    t.match((err as Error).message, why, `${name}: says why`);
    t.ok((err as Error).message.length < 160, `${name}: a short reason`);
  }
});

t.test('no Host at all, and the proxy headers', async (t) => {
  t.throws(() => baseUrlFor(req({}), { trustProxy: false }), { message: /missing Host header/ });
  t.equal(baseUrlFor(req({}), { trustProxy: false, baseUrl: 'https://mirror.example' }), 'https://mirror.example', '--base-url needs no Host');
  const proxied = { host: '127.0.0.1:8080', 'x-forwarded-host': 'Yum_Mirror:8443, other', 'x-forwarded-proto': 'https' };
  t.equal(baseUrlFor(req(proxied), { trustProxy: true }), 'https://yum_mirror:8443', 'the first X-Forwarded-Host, same rule');
  t.equal(baseUrlFor(req(proxied), { trustProxy: false }), 'http://127.0.0.1:8080', 'ignored without --trust-proxy');
  t.throws(() => baseUrlFor(req({ ...proxied, 'x-forwarded-host': 'a b' }), { trustProxy: true }), {
    message: /^invalid X-Forwarded-Host header: it contains whitespace/,
  });
  t.throws(() => baseUrlFor(req({ ...proxied, 'x-forwarded-proto': 'gopher' }), { trustProxy: true }), { message: /X-Forwarded-Proto/ });
});

t.test('through serve: an underscore Host gets a torrent whose web seed has that host', async (t) => {
  const dir = t.testdir({ root: { pub: { x: { 'a.rpm': randomBytes(40_000) } } }, cache: {} });
  const srv = await startServe(t, { root: join(dir, 'root'), cacheDir: join(dir, 'cache') });
  for (const [host, seed] of [
    ['yum_mirror:8080', 'http://yum_mirror:8080/pub/x/'],
    ['Yum_Mirror.Internal.', 'http://yum_mirror.internal./pub/x/'],
    ['[::1]:8080', 'http://[::1]:8080/pub/x/'],
  ]) {
    const r = await request(srv.url, '/pub/torrent_service/simple/pub/x/a.rpm', { headers: { Host: host! } });
    t.equal(r.status, 200, `${host}: status`, { body: r.status === 200 ? '' : r.body.toString() });
    if (r.status === 200) t.same(decodeTorrent(r.body)['url-list'], [seed], `${host}: url-list`);
  }
  const bad = await request(srv.url, '/pub/torrent_service/simple/pub/x/a.rpm', { headers: { Host: 'mirror:65536' } });
  t.equal(bad.status, 400);
  t.equal(bad.headers['content-type'], 'text/plain; charset=utf-8');
  t.equal(bad.body.toString(), 'invalid Host header: the port 65536 is out of range (1 to 65535)\n', 'the reason, as text');
});
