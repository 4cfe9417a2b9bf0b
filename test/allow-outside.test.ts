// Symlinked storage, the most common mirror layout: the web root's folders
// are links to storage elsewhere. Without --allow-outside every such path is
// refused; with it the links are followed into the named trees and no
// further, and the root itself may be a link.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { decodeTorrent } from './helpers/bencode.js';
import { digestOf, postPaths, request, startServe } from './helpers/server.js';

const A = randomBytes(40_000);
const dir = t.testdir({
  www: { 'index.html': 'hi' },
  storage: { pub: { x: { 'a.rpm': A, 'b.rpm': randomBytes(100) } } },
  elsewhere: { 'secret.rpm': 'secret' },
  cache: {},
});
symlinkSync(join(dir, 'storage/pub'), join(dir, 'www/pub'));
symlinkSync(join(dir, 'elsewhere/secret.rpm'), join(dir, 'storage/pub/x/evil.rpm'));
// The root itself a link, as /var/www/html -> /srv/www often is.
symlinkSync(join(dir, 'www'), join(dir, 'wwwlink'));
const S = '/pub/torrent_service';

t.test('without --allow-outside, symlinked storage is refused', async (t) => {
  const srv = await startServe(t, { root: join(dir, 'wwwlink'), cacheDir: join(dir, 'cache'), files: true });
  t.equal((await request(srv.url, `${S}/simple/pub/x/a.rpm`)).status, 403);
  t.equal((await request(srv.url, '/pub/x/a.rpm')).status, 403);
  t.equal((await request(srv.url, `${S}/simple/pub/x/*`)).status, 403, 'a glob whose fixed part leads out');
});

t.test('with --allow-outside, every route follows the links into that tree only', async (t) => {
  const srv = await startServe(t, {
    root: join(dir, 'wwwlink'),
    cacheDir: join(dir, 'cache'),
    files: true,
    args: ['--allow-outside', join(dir, 'storage')],
  });
  const single = await request(srv.url, `${S}/simple/pub/x/a.rpm`);
  t.equal(single.status, 200, 'simple/');
  t.equal(decodeTorrent(single.body).info.length, A.length);
  const file = await request(srv.url, '/pub/x/a.rpm');
  t.equal(file.status, 200, '--files');
  t.ok(file.body.equals(A), 'the bytes of the file in storage');
  const glob = await request(srv.url, `${S}/simple/pub/x/*.rpm`);
  t.equal(glob.status, 200, 'a glob');
  t.same(
    decodeTorrent(glob.body)
      .info.files.filter((f: { attr?: string }) => f.attr !== 'p')
      .map((f: { path: string[] }) => f.path.join('/')),
    ['x/a.rpm', 'x/b.rpm'],
    'the glob skips the link leading further out',
  );
  const paths = ['/pub/x/a.rpm', '/pub/x/b.rpm'];
  t.equal((await postPaths(srv.url, 'pub', paths, digestOf(paths))).status, 200, 'digest POST');
  t.equal((await request(srv.url, `${S}/simple/pub/x/evil.rpm`)).status, 403, 'a link out of the allowed tree is still refused');
  t.equal((await request(srv.url, '/pub/x/evil.rpm')).status, 403);
  t.notOk(file.body.includes(Buffer.from('secret')), 'nothing from elsewhere');
});
