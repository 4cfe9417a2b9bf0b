// The proxy's status page (pkgtorrent-proxy(8), STATUS PAGE): the recorder's
// tallies under an injected clock, the page and its JSON after real
// requests through an in-process proxy (their figures are the access log's),
// names from mirrors shown escaped, and the page's HTTP: the proxy's access
// rule, GET and HEAD only, never cached.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { needBtEngine } from './helpers/oracles.js';
import { startMirror, startPlainMirror, writeTree } from './helpers/mirror.js';
import { sources, startTestProxy, viaProxy } from './helpers/proxy.js';
import { request } from './helpers/server.js';
import { scratch } from './helpers/clients.js';
import { SOURCES, bytesBySource } from '../src/proxy/answer-path.js';
import type { Outcome } from '../src/proxy/handle.js';
import { HOURS, ProxyStatus, RECENT, type StatusSnapshot } from '../src/proxy/status.js';
import { clientFacingUrl, statusRequest } from '../src/proxy/status-http.js';
import { escapeHtml, renderStatusPage } from '../src/proxy/status-page.js';

const HOUR = 3_600_000;
const HOSTILE = `evil<script>alert(1)</script>"'&.rpm`;

/** Outcomes as handle.ts and server.ts make them. */
const outcomes: Record<string, Outcome> = {
  bittorrent: { status: 200, path: 'bittorrent', bytes: 1000, length: 1000, from: { peers: 700, mirror: 400, store: 0, seeder: 100 }, peers: { connections: 3, seeders: 1 } },
  store: { status: 200, path: 'store', bytes: 1000, length: 1000, from: { peers: 0, mirror: 0, store: 1000, seeder: 0 } },
  small: { status: 200, path: 'direct(small)', bytes: 50, length: 50, from: { peers: 0, mirror: 50, store: 0, seeder: 0 } },
  metadata: { status: 200, path: 'direct', bytes: 13, length: 13, from: { peers: 0, mirror: 13, store: 0, seeder: 0 } },
  tunnel: { status: 200, path: 'tunnel', bytes: 77 },
  refused: { status: 403, path: 'refused', bytes: 0 },
};

t.test('the recorder: totals, hourly tallies bounded to HOURS, the ring of recent downloads', async (t) => {
  let now = Date.UTC(2026, 11, 6, 10, 30);
  const s = new ProxyStatus(() => now);
  const urls: Record<string, string> = {
    bittorrent: 'http://m1.example/pub/big.rpm',
    store: 'http://m1.example/pub/big.rpm',
    small: 'http://m2.example:8080/debian/pool/small_1.0_all.deb',
    metadata: 'http://m2.example:8080/debian/dists/stable/InRelease',
    tunnel: 'm3.example:443',
    refused: 'http://m4.example/x.rpm',
  };
  for (const [k, o] of Object.entries(outcomes)) s.observe(o, urls[k]!, now - 250);
  const a = s.traffic();
  const all = Object.values(outcomes);
  t.equal(a.totals.requests, all.length);
  t.same(a.totals.paths, { bittorrent: 1, store: 1, direct: 2, tunnel: 1, refused: 1 });
  for (const src of SOURCES) t.equal(a.totals.bytes[src], all.reduce((n, o) => n + bytesBySource(o)[src], 0), `bytes from ${src}`);
  t.same(a.totals.bytes, { peers: 700, mirror: 400, store: 1000, direct: 50 + 13 + 77 }, 'direct answers and tunnels count as direct; a BitTorrent download splits by source');
  t.equal(a.totals.delivered, all.reduce((n, o) => n + o.bytes, 0));
  const spared = (700 + 1000) / (700 + 400 + 1000 + 140);
  t.equal(a.totals.mirrorSpared, spared, 'spared: peers and store over all bytes by source');
  t.equal(a.hours.length, 1);
  t.equal(a.hours[0]!.start, '2026-12-06T10:00:00.000Z', 'an hour starts on the hour');
  t.same(a.hours[0]!.bytes, a.totals.bytes);
  t.same(
    a.recent.map((r) => [r.path, r.name]),
    [
      ['direct(small)', 'small_1.0_all.deb'],
      ['store', 'big.rpm'],
      ['bittorrent', 'big.rpm'],
    ],
    'the package answers only (not metadata, tunnels or refusals), newest first',
  );
  t.equal(a.recent[2]!.durationMs, 250, 'duration on the injected clock');
  t.same(a.recent[2]!.peers, { connections: 3, seeders: 1 });
  t.same(a.recent[2]!.from, { peers: 700, mirror: 400, store: 0, direct: 0 });
  t.same(
    a.origins.map((m) => [m.origin, m.requests]),
    [
      ['http://m2.example:8080', 2],
      ['http://m1.example', 2],
    ],
    'mirror hosts seen, most recent first (not tunnels or refusals)',
  );

  now += HOUR;
  s.observe(outcomes.store!, urls.store!, now);
  const b = s.traffic();
  t.same(
    b.hours.map((h) => [h.start, h.requests, h.bytes.store]),
    [
      ['2026-12-06T10:00:00.000Z', all.length, 1000],
      ['2026-12-06T11:00:00.000Z', 1, 1000],
    ],
  );
  t.equal(b.hours[1]!.mirrorSpared, 1, 'an hour served from the store spared the mirror everything');
  t.equal(b.totals.requests, all.length + 1);

  now += (HOURS - 1) * HOUR;
  const c = s.traffic();
  t.same(
    c.hours.map((h) => h.start),
    ['2026-12-06T11:00:00.000Z'],
    `hours older than ${HOURS} h are dropped`,
  );
  t.equal(c.totals.requests, all.length + 1, 'the totals keep everything since the start');
  t.equal(c.uptimeMs, now - Date.UTC(2026, 11, 6, 10, 30));

  for (let i = 0; i < RECENT + 7; i++) s.observe(outcomes.small!, `http://m1.example/pub/p${i}.rpm`, now);
  const d = s.traffic();
  t.equal(d.recent.length, RECENT, 'the ring is bounded');
  t.equal(d.recent[0]!.name, `p${RECENT + 6}.rpm`, 'newest first');
  t.equal(d.recent.at(-1)!.name, 'p7.rpm', 'the oldest dropped');
});

t.test('which requests are the page, and which Host is believed', async (t) => {
  for (const raw of ['/', '/_pkgtorrent', '/_pkgtorrent/', '/?x=1']) t.equal(statusRequest(raw), 'html', raw);
  for (const raw of ['/?format=json', '/_pkgtorrent/?format=json']) t.equal(statusRequest(raw), 'json', raw);
  for (const raw of ['http://127.0.0.1/', '/debian/', '/_pkgtorrent/x', '/_pkgtorrentx', '//']) t.equal(statusRequest(raw), null, raw);
  const fallback = 'http://127.0.0.1:3142';
  t.equal(clientFacingUrl('proxy.lan:3142', fallback), 'http://proxy.lan:3142');
  t.equal(clientFacingUrl('10.0.0.5:3142', fallback), 'http://10.0.0.5:3142');
  t.equal(clientFacingUrl('[fd00::5]:3142', fallback), 'http://[fd00::5]:3142');
  t.equal(clientFacingUrl('Proxy.LAN', fallback), 'http://proxy.lan', 'no port: the one the browser used is 80');
  for (const bad of [undefined, '', 'a b', 'x"><script>', 'host:99999', 'host:0', '[not-v6]:1', 'a..b', 'user@host', '-x.lan']) t.equal(clientFacingUrl(bad, fallback), fallback, String(bad));
});

t.test('escapeHtml, and a page rendered from hostile values', async (t) => {
  t.equal(escapeHtml(`<a href="x" title='y'>&amp;</a>`), '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;');
  let now = Date.UTC(2026, 11, 6, 9);
  const s = new ProxyStatus(() => now);
  const url = `http://m1.example/pub/${encodeURIComponent(HOSTILE)}`;
  s.observe({ ...outcomes.bittorrent!, sent: { fallback: '<b>stalled</b>' } as Outcome['sent'] }, url, now);
  now += 1000;
  const snapshot: StatusSnapshot = {
    version: '0',
    ...(({ origins, ...rest }) => ({ ...rest, mirrors: origins.map((m) => ({ ...m, service: [{ prefix: '/<i>pub</i>', runs: true }] })) }))(s.traffic()),
    proxyUrl: 'http://x"><script>alert(2)</script>',
    store: { bytes: 1, packages: 1, limitBytes: 2, seeding: 1 },
    engine: { version: '<img src=x onerror=alert(3)>', restarts: 0, answering: true, torrents: 1, peers: 0, uploaded: 5 },
  };
  const page = renderStatusPage(snapshot);
  for (const raw of ['<script>', '<b>stalled', '<i>pub', '<img', `"'&.rpm`]) t.notOk(page.includes(raw), `no raw ${raw}`);
  t.ok(page.includes(escapeHtml(HOSTILE)), 'the name, escaped');
  t.ok(page.includes('&lt;b&gt;stalled&lt;/b&gt;'), 'the fallback reason, escaped');
  t.ok(page.includes(`Acquire::http::Proxy &quot;${escapeHtml(snapshot.proxyUrl)}/&quot;`), 'the address in the apt snippet, escaped');
  t.equal(page.match(/<rect class="bar"/g)?.length, 2, 'two sources sent bytes that hour: a bar each');
});

/** The addresses of this machine other than loopback (IPv4). */
function outsideAddress(): string | null {
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  return null;
}

t.test('the page after real requests through the proxy: the access log\'s figures, escaped names, its HTTP', async (t) => {
  if (!needBtEngine(t)) return;
  const big = randomBytes(300_000);
  const small = randomBytes(20_000);
  const m = await startMirror(t, { pub: { 'big-1.0.rpm': big, 'small-1.0.rpm': small, 'repomd.xml': '<repomd/>' } });
  const plainRoot = scratch(t, 'plain');
  // Its '/' is %2F in the URL: the plain mirror decodes it into a directory.
  const [dir, file] = HOSTILE.split('/') as [string, string];
  writeTree(plainRoot, { pub: { [dir]: { [file]: 'x'.repeat(1000) } } });
  const plain = await startPlainMirror(t, plainRoot);
  const p = await startTestProxy(t);

  t.ok((await viaProxy(p.url, `${m.url}/pub/big-1.0.rpm`)).body.equals(big));
  await p.line(/big-1\.0\.rpm 200 bittorrent/);
  t.ok((await viaProxy(p.url, `${m.url}/pub/big-1.0.rpm`)).body.equals(big));
  await p.line(/big-1\.0\.rpm 200 store/);
  t.ok((await viaProxy(p.url, `${m.url}/pub/small-1.0.rpm`)).body.equals(small));
  t.equal((await viaProxy(p.url, `${m.url}/pub/repomd.xml`)).status, 200);
  t.equal((await viaProxy(p.url, `${plain.url}/pub/${encodeURIComponent(HOSTILE)}`)).status, 200);
  t.equal(await p.count(/ 200 (bittorrent|store|direct)/, 5), 5, 'five answers logged');

  const page = await request(p.url, '/_pkgtorrent/');
  t.equal(page.status, 200);
  t.equal(page.headers['content-type'], 'text/html; charset=utf-8');
  t.equal(page.headers['cache-control'], 'no-store');
  t.match(page.headers['content-security-policy'], /default-src 'none'/, 'no script may run');
  const text = page.body.toString();
  t.notOk(text.includes('<script>alert(1)</script>'), 'the raw name never appears');
  t.notOk(text.includes(`"'&.rpm`), 'nor its quotes and ampersand');
  t.ok(text.includes(escapeHtml(HOSTILE)), 'the name appears escaped');
  const rows = [...text.matchAll(/<tr class="download" data-path="([^"]+)">([^]*?)<\/tr>/g)].map((r) => ({ path: r[1]!, text: r[2]!.replace(/<[^>]+>/g, ' ') }));
  t.same(
    rows.map((r) => [r.path, /\b(big-1\.0|small-1\.0)\.rpm|evil/.exec(r.text)?.[0]]),
    [
      ['direct(service answered 404)', 'evil'],
      ['direct(small)', 'small-1.0.rpm'],
      ['store', 'big-1.0.rpm'],
      ['bittorrent', 'big-1.0.rpm'],
    ],
    'the package downloads, newest first, with the path each took (not the metadata)',
  );
  t.match(text, `Acquire::http::Proxy &quot;${p.url}/&quot;`, 'the apt snippet has the address the page was asked at');
  t.match(text, `proxy=${p.url}`, 'dnf');
  t.match(text, `http_proxy=${p.url} zypper refresh`, 'zypper');
  t.match(text, `http_proxy=${p.url} pacman -Syu`, 'pacman');

  const json = await request(p.url, '/_pkgtorrent/?format=json');
  t.equal(json.headers['content-type'], 'application/json; charset=utf-8');
  t.equal(json.headers['cache-control'], 'no-store');
  const s = JSON.parse(json.body.toString()) as StatusSnapshot;
  // The access log's own figures, summed, are the totals.
  const lines = p.log.filter((l) => / (GET|CONNECT) /.test(l) && !/ status /.test(l)).map(sources);
  t.equal(s.totals.requests, lines.length, `requests: ${lines.length} log lines`);
  t.equal(s.totals.delivered, lines.reduce((n, l) => n + l.bytes, 0), 'delivered: the log lines\' bytes=');
  t.equal(s.totals.bytes.peers + s.totals.bytes.mirror + s.totals.bytes.store + s.totals.bytes.direct, lines.reduce((n, l) => n + l.peers + l.mirror + l.store, 0), 'bytes by source: the log lines\' peers= mirror= store=');
  t.equal(s.totals.bytes.store, big.length, 'the store sent the repeat');
  t.equal(s.totals.bytes.peers + s.totals.bytes.mirror, lines.find((l) => l.bytes === big.length && l.store === 0)!.mirror, 'the BitTorrent download: its pieces from the mirror (no tracker)');
  const b = s.totals.bytes;
  t.equal(s.totals.mirrorSpared, (b.peers + b.store) / (b.peers + b.store + b.mirror + b.direct), 'spared: peers and store over all');
  t.equal(s.totals.paths.bittorrent, 1);
  t.equal(s.totals.paths.store, 1);
  t.equal(s.hours.reduce((n, h) => n + h.requests, 0), s.totals.requests, 'the hours add up to the totals');
  t.equal(s.recent[0]!.name, HOSTILE, 'the JSON has the name as it is');
  t.equal(s.recent.find((r) => r.path === 'store')!.from.store, big.length);
  t.equal(s.store?.packages, 1, 'one package stored');
  t.ok(s.store!.bytes > big.length, `the store holds it and its torrent (${s.store!.bytes} bytes)`);
  t.equal(s.store?.seeding, 1, 'and seeds it');
  t.equal(s.engine.version, (await p.engine.session()).version, "the engine's libtorrent");
  t.ok(s.engine.answering);
  t.equal(s.engine.restarts, 0);
  t.same(
    s.mirrors.map((x) => [x.origin, x.service]),
    [
      [new URL(plain.url).origin, [{ prefix: '/pub', runs: false }]],
      [new URL(m.url).origin, [{ prefix: '/pub', runs: true }]],
    ],
    'each mirror host, and whether its prefix runs the service',
  );
  t.equal(s.proxyUrl, p.url);

  t.same(JSON.parse((await request(p.url, '/?format=json')).body.toString()).totals, s.totals, 'at / too; the page is not counted as traffic');
  t.match((await request(p.url, '/')).body.toString(), /<h1>pkgtorrent proxy<\/h1>/);
  const other = (await request(p.url, '/', { headers: { host: 'proxy.lan:3142' } })).body.toString();
  t.match(other, 'proxy=http://proxy.lan:3142', 'the Host the browser used');
  const bad = (await request(p.url, '/', { headers: { host: 'x"><script>alert(4)</script>' } })).body.toString();
  t.match(bad, `proxy=${p.url}`, 'an odd Host: the listen address');
  t.notOk(bad.includes('<script>'));

  const head = await request(p.url, '/_pkgtorrent/', { method: 'HEAD' });
  t.equal(head.status, 200, 'HEAD');
  t.equal(head.headers['content-type'], 'text/html; charset=utf-8');
  t.ok(Number(head.headers['content-length']) > 1000, 'the length of the page');
  t.equal(head.body.length, 0, 'no body');
  const post = await request(p.url, '/_pkgtorrent/', { method: 'POST', body: 'x' });
  t.equal(post.status, 405, 'POST');
  t.equal(post.headers.allow, 'GET, HEAD');
  t.equal((await request(p.url, '/', { method: 'DELETE' })).status, 405, 'DELETE at /');
  await p.line(/ POST \/_pkgtorrent\/ 405 status /);
  t.equal(await p.count(/ 405 status /, 2), 2, 'the page\'s answers are logged');

  await t.rejects(startTestProxy(t, { mirrors: ['_pkgtorrent=http://127.0.0.1:1/'] }), { message: /status page/ }, 'no mirror may take the name');
});

t.test("the page follows --allow-from, as proxy requests do", async (t) => {
  if (!needBtEngine(t)) return;
  const address = outsideAddress();
  if (!address) {
    t.pass('no address besides loopback here', { skip: 'this machine has no non-loopback IPv4 address to be a client not admitted from' });
    return;
  }
  // A client connecting from this machine's own address is not loopback: only --allow-from admits it.
  const refused = await startTestProxy(t, { host: address, allowFrom: [address === '198.51.100.7' ? '198.51.100.8/32' : '198.51.100.7/32'] });
  const r = await request(refused.url, '/_pkgtorrent/');
  t.equal(r.status, 403, `${address} is not admitted`);
  t.match(r.body.toString(), /not allowed by --allow-from/);
  t.equal((await request(refused.url, '/?format=json')).status, 403);
  // The proxy's clock comes in as an option (here, frozen then moved on by hand).
  let clock = Date.UTC(2030, 0, 1, 12, 0, 0);
  const admitted = await startTestProxy(t, { host: address, allowFrom: [`${address}/32`], store: join(scratch(t, 'store2'), 's'), now: () => clock });
  clock += 90_000;
  const ok = await request(admitted.url, '/?format=json');
  t.equal(ok.status, 200, `${address}/32 admits it`);
  const s = JSON.parse(ok.body.toString()) as StatusSnapshot;
  t.equal(s.proxyUrl, admitted.url);
  t.equal(s.startedAt, '2030-01-01T12:00:00.000Z', 'the injected clock');
  t.equal(s.uptimeMs, 90_000);
});
