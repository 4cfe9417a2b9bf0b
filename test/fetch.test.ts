// `pkgtorrent fetch` against a real `serve --files`: the digest conversation
// (GET 412, POST, then GET 200 once cached), the download through aria2 and
// the per-file fallback to plain HTTP.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { freePort } from '../src/core/aria2.js';
import { run } from '../src/cli/main.js';
import { cli } from './helpers/cli.js';
import { need } from './helpers/oracles.js';
import { startMirror } from './helpers/mirror.js';
import { startServe, digestOf } from './helpers/server.js';
import { scratch } from './helpers/clients.js';
import { writeTree } from './helpers/mirror.js';

const files = { 'a+1.rpm': randomBytes(70_000), 'b c.rpm': randomBytes(16_384), 'd.rpm': randomBytes(1_000) };
const paths = ['/pub/x/a%2B1.rpm', '/pub/x/b%20c.rpm', '/pub/x/d.rpm'];

t.test('digest mode end to end: 412, POST, download, then the cached GET', async (t) => {
  if (!need(t, 'aria2c')) return;
  const m = await startMirror(t, { pub: { x: files }, other: { 'e.rpm': 'eee' } });
  const out = t.testdir();
  const r = await cli(['fetch', '--base', m.url, '-o', out, '--bt-port', String(await freePort()), ...paths, '/other/e.rpm']);
  t.equal(r.code, 0, r.stderr);
  for (const [name, data] of Object.entries(files)) t.ok(readFileSync(join(out, 'pub/x', name)).equals(data), `${name} identical`);
  t.equal(readFileSync(join(out, 'other/e.rpm'), 'utf8'), 'eee', 'a second prefix, a second torrent');
  t.match(r.stdout, /^bittorrent 70000 \/pub\/x\/a%2B1\.rpm$/m);
  t.match(r.stdout, /^bittorrent 16384 \/pub\/x\/b%20c\.rpm$/m);
  t.match(r.stdout, /^bittorrent 1000 \/pub\/x\/d\.rpm$/m);
  const d = digestOf([...paths].sort());
  await m.serve.waitFor(new RegExp(`GET /pub/torrent_service/digest/${d} 412`));
  await m.serve.waitFor(new RegExp(`POST /pub/torrent_service/digest/${d} 200`));
  t.same(readdirSync(out).sort(), ['other', 'pub'], 'no temporary directory left');

  const again = t.testdir();
  const r2 = await cli(['fetch', '--base', m.url, '-o', again, '--bt-port', String(await freePort()), ...paths]);
  t.equal(r2.code, 0);
  await m.serve.waitFor(new RegExp(`GET /pub/torrent_service/digest/${d} 200`));
  t.ok(readFileSync(join(again, 'pub/x/d.rpm')).equals(files['d.rpm']));
});

t.test('the service refuses the set: every file over HTTP; a missing file fails alone', async (t) => {
  if (!need(t, 'aria2c')) return;
  const dir = scratch(t, 'refuse');
  writeTree(join(dir, 'root'), { pub: { x: files } });
  // --max-paths 2: the POST of three paths is refused with 413.
  const srv = await startServe(t, { root: join(dir, 'root'), cacheDir: join(dir, 'cache'), files: true, args: ['--max-paths', '2'] });
  const out = t.testdir();
  const r = await cli(['fetch', '--base', srv.url, '-o', out, ...paths]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /no torrent for \/pub \(digest POST answered 413/);
  for (const [name, data] of Object.entries(files)) t.ok(readFileSync(join(out, 'pub/x', name)).equals(data), `${name} identical, direct`);
  t.match(r.stdout, /^direct 70000 \/pub\/x\/a%2B1\.rpm$/m);

  const out2 = t.testdir();
  const r2 = await cli(['fetch', '--base', srv.url, '-o', out2, '/pub/x/d.rpm', '/pub/x/missing.rpm']);
  t.equal(r2.code, 1, 'a failed file fails the run');
  t.match(r2.stdout, /^failed 0 \/pub\/x\/missing\.rpm \(.*404\)$/m);
  t.ok(readFileSync(join(out2, 'pub/x/d.rpm')).equals(files['d.rpm']), 'the other file still arrives');
  t.notOk(existsSync(join(out2, 'pub/x/missing.rpm')), 'no partial file');
  t.same(readdirSync(join(out2, 'pub/x')), ['d.rpm']);
});

t.test('paths on stdin; bad usage is one line, exit 2', async (t) => {
  if (!need(t, 'aria2c')) return;
  const m = await startMirror(t, { pub: { x: files } });
  const out = t.testdir();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let text = '';
  stdout.on('data', (c: Buffer) => (text += c.toString()));
  stderr.resume();
  const code = await run({
    argv: ['fetch', '--base', m.url, '-o', out, '--bt-port', String(await freePort())],
    cwd: process.cwd(),
    vars: {},
    stdout,
    stderr,
    stdin: Readable.from([paths.join('\n') + '\n']),
    defaultConfigFile: '/nonexistent',
  });
  t.equal(code, 0);
  t.equal(text.trim().split('\n').length, 3);
  t.ok(readFileSync(join(out, 'pub/x/a+1.rpm')).equals(files['a+1.rpm']));

  const bad = await cli(['fetch', '--base', 'ftp://x', '-o', out, '/pub/a']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /^pkgtorrent: invalid --base 'ftp:\/\/x': use http or https\n$/);
  const dots = await cli(['fetch', '--base', m.url, '-o', out, '/pub/../etc/passwd']);
  t.equal(dots.code, 2);
  t.match(dots.stderr, /invalid path '\/pub\/\.\.\/etc\/passwd'/);
});
