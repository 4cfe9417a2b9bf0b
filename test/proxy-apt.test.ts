// apt end to end through the proxy: a small Debian repository (dpkg-deb,
// apt-ftparchive) served by `pkgtorrent serve --files`; `apt-get update` and
// `apt-get install --download-only` in an isolated apt state with
// Acquire::http::Proxy pointing at the proxy. The large package goes through
// BitTorrent (the engine, its pieces from the mirror: no tracker here), the
// small one and the metadata go direct, and the bytes apt keeps are the
// repository's.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { aptThrough, makeAptRepo } from './helpers/apt.js';
import { scratch } from './helpers/clients.js';
import { need, needBtEngine } from './helpers/oracles.js';
import { startServe } from './helpers/server.js';
import { startTestProxy } from './helpers/proxy.js';

t.test('apt-get update and install --download-only through the proxy', async (t) => {
  if (!needBtEngine(t) || !need(t, 'dpkg-deb') || !need(t, 'apt-ftparchive') || !need(t, 'apt-get')) return;
  const dir = scratch(t, 'apt');
  const repo = makeAptRepo(dir, { bigpkg: randomBytes(1_500_000), smallpkg: randomBytes(10_000) });
  mkdirSync(join(dir, 'cache'));
  const mirror = await startServe(t, { root: join(dir, 'root'), cacheDir: join(dir, 'cache'), files: true });
  const proxy = await startTestProxy(t, { minSize: 500_000 });
  const apt = aptThrough(dir, mirror.url, proxy.url);
  await apt.run(['update']);
  await apt.run(['install', '-y', '--download-only', '--no-install-recommends', 'bigpkg', 'smallpkg']);

  for (const name of ['bigpkg_1.0_all.deb', 'smallpkg_1.0_all.deb']) {
    t.ok(readFileSync(join(apt.dir, 'cache/archives', name)).equals(readFileSync(join(repo, 'pool/main', name))), `${name}: apt's copy is the repository's`);
  }
  const bigSize = statSync(join(repo, 'pool/main/bigpkg_1.0_all.deb')).size;
  const big = await proxy.line(/bigpkg_1\.0_all\.deb 200 bittorrent/);
  t.match(big, new RegExp(`bytes=${bigSize} \\d+ms peers=0 mirror=${bigSize} store=0 `), 'the large package went through the engine, its pieces from the mirror (no tracker)');
  t.notMatch(big, /range=|fallback=/, 'no Range fallback');
  await proxy.line(/smallpkg_1\.0_all\.deb 200 direct\(small\)/);
  await proxy.line(/dists\/stable\/(InRelease|Release) \d+ direct /);
  t.notOk(proxy.log.some((l) => /dists\/.* (bittorrent|store) /.test(l)), 'metadata never through BitTorrent');
  t.comment(proxy.log.join('\n'));
  await mirror.waitFor(/simple\/debian\/pool\/main\/bigpkg_1\.0_all\.deb 200/);
});
