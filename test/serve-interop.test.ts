// A real client: libtorrent downloads service torrents through their web seed
// from `serve --files` alone, and every byte matches the mirror.
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { libtorrent, need } from './helpers/oracles.js';
import { postPaths, request, startServe } from './helpers/server.js';

// Downloads one torrent into a save path using web seeds only; prints the outcome as JSON.
const DOWNLOAD = `
import json, sys, time, libtorrent as lt
torrent, save, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
s = lt.session({
  'listen_interfaces': '127.0.0.1:0', 'enable_dht': False, 'enable_lsd': False,
  'enable_upnp': False, 'enable_natpmp': False, 'alert_mask': 0,
})
h = s.add_torrent({'ti': lt.torrent_info(torrent), 'save_path': save})
deadline = time.time() + timeout
st = h.status()
while time.time() < deadline:
    st = h.status()
    if st.is_seeding or st.errc.value() != 0:
        break
    time.sleep(0.1)
print(json.dumps({'seeding': st.is_seeding, 'progress': st.progress, 'error': st.errc.message() if st.errc.value() else ''}))
s.remove_torrent(h)
`;

t.test('libtorrent downloads a digest torrent and a simple torrent through the web seed', async (t) => {
  if (!need(t, 'libtorrent')) return;
  const files = { 'a+1.rpm': randomBytes(70_000), 'b c.rpm': randomBytes(16_384), 'd.rpm': randomBytes(1_000) };
  const dir = t.testdir({ root: { pub: { x: files }, isos: { 'big.iso': randomBytes(300_000) } }, cache: {}, dl1: {}, dl2: {} });
  const srv = await startServe(t, { root: join(dir, 'root'), cacheDir: join(dir, 'cache'), files: true });

  const paths = ['/pub/x/a%2B1.rpm', '/pub/x/b%20c.rpm', '/pub/x/d.rpm'];
  const digest = createHash('sha1').update(paths.join('\n')).digest('hex');
  const multi = await postPaths(srv.url, 'pub', paths, digest);
  t.equal(multi.status, 200);
  writeFileSync(join(dir, 'multi.torrent'), multi.body);
  const r1 = libtorrent<{ seeding: boolean; error: string }>(DOWNLOAD, [join(dir, 'multi.torrent'), join(dir, 'dl1'), '30'], 60_000);
  t.same(r1, { seeding: true, progress: 1, error: '' }, 'multi-file download complete and verified');
  for (const [name, data] of Object.entries(files)) t.ok(readFileSync(join(dir, 'dl1/pub/x', name)).equals(data), `${name} matches`);

  const single = await request(srv.url, '/isos/torrent_service/simple/isos/big.iso');
  t.equal(single.status, 200);
  writeFileSync(join(dir, 'single.torrent'), single.body);
  const r2 = libtorrent<{ seeding: boolean; error: string }>(DOWNLOAD, [join(dir, 'single.torrent'), join(dir, 'dl2'), '30'], 60_000);
  t.same(r2, { seeding: true, progress: 1, error: '' }, 'single-file download complete and verified');
  t.ok(readFileSync(join(dir, 'dl2/big.iso')).equals(readFileSync(join(dir, 'root/isos/big.iso'))), 'big.iso matches');
  t.match(srv.stderr(), /GET \/pub\/x\/a%2B1\.rpm 20[06] /i, 'files fetched from the web seed');
  await srv.waitFor(/GET \/isos\/big\.iso 20[06] /);
});
