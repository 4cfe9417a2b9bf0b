// A real client: libtorrent downloads service torrents through their web seed
// from `serve --files` alone, and every byte matches the mirror.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { libtorrentDownload } from './helpers/clients.js';
import { need } from './helpers/oracles.js';
import { digestOf, postPaths, request, startServe } from './helpers/server.js';

t.test('libtorrent downloads a digest torrent and a simple torrent through the web seed', async (t) => {
  if (!need(t, 'libtorrent')) return;
  const files = { 'a+1.rpm': randomBytes(70_000), 'b c.rpm': randomBytes(16_384), 'd.rpm': randomBytes(1_000) };
  const dir = t.testdir({ root: { pub: { x: files }, isos: { 'big.iso': randomBytes(300_000) } }, cache: {}, dl1: {}, dl2: {} });
  const srv = await startServe(t, { root: join(dir, 'root'), cacheDir: join(dir, 'cache'), files: true });

  const paths = ['/pub/x/a%2B1.rpm', '/pub/x/b%20c.rpm', '/pub/x/d.rpm'];
  const multi = await postPaths(srv.url, 'pub', paths, digestOf(paths));
  t.equal(multi.status, 200);
  writeFileSync(join(dir, 'multi.torrent'), multi.body);
  const r1 = await libtorrentDownload(t, join(dir, 'multi.torrent'), join(dir, 'dl1'));
  t.ok(r1.ok && r1.hashFailed === 0, `multi-file download complete and verified ${r1.detail}`);
  for (const [name, data] of Object.entries(files)) t.ok(readFileSync(join(dir, 'dl1/pub/x', name)).equals(data), `${name} matches`);

  const single = await request(srv.url, '/isos/torrent_service/simple/isos/big.iso');
  t.equal(single.status, 200);
  writeFileSync(join(dir, 'single.torrent'), single.body);
  const r2 = await libtorrentDownload(t, join(dir, 'single.torrent'), join(dir, 'dl2'));
  t.ok(r2.ok && r2.hashFailed === 0, `single-file download complete and verified ${r2.detail}`);
  t.ok(readFileSync(join(dir, 'dl2/big.iso')).equals(readFileSync(join(dir, 'root/isos/big.iso'))), 'big.iso matches');
  t.match(srv.stderr(), /GET \/pub\/x\/a%2B1\.rpm 20[06] /i, 'files fetched from the web seed');
  await srv.waitFor(/GET \/isos\/big\.iso 20[06] /);
});
