// The status page in a real browser (Debian's chromium, headless, through
// puppeteer-core) after real apt downloads through the proxy: the packages
// with the path each took and its bytes by source, the SVG chart drawn with
// a bar for each source that sent bytes, and a file named with a <script>
// shown as text with nothing run. A screenshot is kept for people
// (ARTIFACTS_DIR, else .tap/artifacts). Everything on 127.0.0.1.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import puppeteer from 'puppeteer-core';
import { aptThrough, makeAptRepo } from './helpers/apt.js';
import { scratch } from './helpers/clients.js';
import { startPlainMirror, writeTree } from './helpers/mirror.js';
import { need, needBtEngine } from './helpers/oracles.js';
import { startTestProxy, viaProxy } from './helpers/proxy.js';
import { request, startServe } from './helpers/server.js';
import { SOURCES } from '../src/proxy/answer-path.js';
import type { StatusSnapshot } from '../src/proxy/status.js';

/** Sets a flag, then alerts: either would show that it ran. */
const HOSTILE = 'evil<script>window.__pwned=1;alert(1)</script>.deb';

t.test('the status page in chromium after apt downloads through the proxy', async (t) => {
  if (!needBtEngine(t) || !need(t, 'dpkg-deb') || !need(t, 'apt-ftparchive') || !need(t, 'apt-get') || !need(t, 'chromium')) return;
  const dir = scratch(t, 'status-browser');
  const repo = makeAptRepo(dir, { bigpkg: randomBytes(1_500_000), smallpkg: randomBytes(10_000) });
  mkdirSync(join(dir, 'cache'));
  const mirror = await startServe(t, { root: join(dir, 'root'), cacheDir: join(dir, 'cache'), files: true });
  const proxy = await startTestProxy(t, { minSize: 500_000 });
  const apt = aptThrough(dir, mirror.url, proxy.url);
  await apt.run(['update']);
  await apt.run(['install', '-y', '--download-only', '--no-install-recommends', 'bigpkg', 'smallpkg']);
  await proxy.line(/bigpkg_1\.0_all\.deb 200 bittorrent/);
  // Again, with apt's copy gone: the proxy answers from its store.
  rmSync(join(apt.dir, 'cache/archives/bigpkg_1.0_all.deb'));
  await apt.run(['install', '-y', '--download-only', '--no-install-recommends', 'bigpkg']);
  await proxy.line(/bigpkg_1\.0_all\.deb 200 store/);
  const bigSize = statSync(join(repo, 'pool/main/bigpkg_1.0_all.deb')).size;

  // A file name from a hostile mirror ('/' in it: a directory on the plain mirror, %2F in the URL).
  const plainRoot = scratch(t, 'plain');
  const [hdir, hfile] = HOSTILE.split('/') as [string, string];
  writeTree(plainRoot, { pool: { [hdir]: { [hfile]: 'x'.repeat(2000) } } });
  const plain = await startPlainMirror(t, plainRoot);
  t.equal((await viaProxy(proxy.url, `${plain.url}/pool/${encodeURIComponent(HOSTILE)}`)).status, 200);
  await proxy.line(/evil.* 200 direct\(/);

  const profile = scratch(t, 'chromium-profile');
  const browser = await puppeteer.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-proxy-server',
      `--user-data-dir=${profile}`,
    ],
  });
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  const dialogs: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  await page.setViewport({ width: 1200, height: 900 });
  const res = await page.goto(`${proxy.url}/_pkgtorrent/`, { waitUntil: 'load' });
  t.equal(res?.status(), 200);

  const rows = await page.$$eval('tr.download', (trs) =>
    trs.map((tr) => ({
      path: tr.getAttribute('data-path') ?? '',
      name: tr.querySelector('td.name')?.textContent ?? '',
      cells: Object.fromEntries([...tr.querySelectorAll('td.num')].map((td) => [td.className.replace('num', '').trim(), td.textContent ?? ''])),
      text: [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '').join(' | '),
    })),
  );
  t.comment(rows.map((r) => r.text.replace(/\s+/g, ' ')).join('\n'));
  t.same(
    rows.map((r) => [r.name, r.path]),
    [
      [HOSTILE, 'direct(service answered 404)'],
      ['bigpkg_1.0_all.deb', 'store'],
      ['smallpkg_1.0_all.deb', 'direct(small)'],
      ['bigpkg_1.0_all.deb', 'bittorrent'],
    ],
    "the downloads, newest first, with the path each took; the hostile name as text",
  );
  const s = JSON.parse((await request(proxy.url, '/_pkgtorrent/?format=json')).body.toString()) as StatusSnapshot;
  const big = s.recent.find((r) => r.path === 'bittorrent')!;
  t.equal(big.size, bigSize);
  const [, stored, , viaBt] = rows;
  t.not(viaBt!.cells.mirror, '-', `the BitTorrent download shows its mirror bytes: ${viaBt!.cells.mirror}`);
  t.equal(viaBt!.cells.store, '-', 'and none from the store');
  t.not(stored!.cells.store, '-', `the repeat shows its store bytes: ${stored!.cells.store}`);
  t.equal(stored!.cells.mirror, '-', 'and none from the mirror');
  t.equal(s.recent.find((r) => r.path === 'store')!.from.store, bigSize);

  const svg = await page.$eval('svg.chart', (el) => {
    const box = el.getBoundingClientRect();
    return { width: box.width, height: box.height };
  });
  t.ok(svg.width > 0 && svg.height > 0, `the chart is drawn: ${svg.width}x${svg.height}`);
  const bars = await page.$$eval('svg.chart rect.bar', (rects) =>
    rects.map((r) => ({ source: r.getAttribute('data-source') ?? '', height: r.getBoundingClientRect().height })),
  );
  const withBytes = SOURCES.filter((src) => s.totals.bytes[src] > 0);
  t.ok(withBytes.includes('store') && withBytes.includes('mirror') && withBytes.includes('direct'), `bytes from ${withBytes.join(', ')}`);
  for (const src of SOURCES) {
    const drawn = bars.filter((b) => b.source === src && b.height > 0).length;
    if (withBytes.includes(src)) t.ok(drawn > 0, `a bar for ${src}`);
    else t.equal(drawn, 0, `no bar for ${src}: it sent nothing`);
  }

  t.same(dialogs, [], 'no dialog opened');
  t.equal(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned), undefined, 'nothing from the name ran');
  t.equal(await page.$$eval('script', (s) => s.length), 0, 'the page has no script element');
  const apt_ = await page.$eval('pre.config[data-client="apt"]', (el) => el.textContent);
  t.equal(apt_, `echo 'Acquire::http::Proxy "${proxy.url}/";' > /etc/apt/apt.conf.d/90pkgtorrent`, 'the apt snippet, ready to paste');

  const artifacts = resolve(process.env.ARTIFACTS_DIR ?? '.tap/artifacts');
  mkdirSync(artifacts, { recursive: true });
  const shot = join(artifacts, 'proxy-status.png');
  await page.screenshot({ path: shot, fullPage: true });
  t.ok(statSync(shot).size > 10_000, `screenshot: ${shot}`);
  t.comment(`screenshot of the status page: ${shot}`);
});
