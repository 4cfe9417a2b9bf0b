// `pkgtorrent fetch` against a real `serve --files`: the digest conversation
// (GET 412, POST, then GET 200 once cached), the download through the
// libtorrent engine with the mirror's HTTP fetched piece by piece (Range on
// each file, padding never asked for), the per-source byte counts, the
// per-file fallback to plain HTTP, --http-only, and a missing engine.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { Context } from '../src/cli/context.js';
import { buildProgram, run } from '../src/cli/main.js';
import { register, type FetchTesting } from '../src/commands/fetch.js';
import { BtEngine } from '../src/core/bt-engine.js';
import { PkgError } from '../src/core/errors.js';
import { parseSetTorrent, type SetTorrent } from '../src/proxy/lookup.js';
import { oneRequest, serviceLayoutMap } from '../src/proxy/mirror-pieces.js';
import { cli } from './helpers/cli.js';
import { freePort, scratch } from './helpers/clients.js';
import { need } from './helpers/oracles.js';
import { startMirror, writeTree } from './helpers/mirror.js';
import { startOpentracker } from './helpers/opentracker.js';
import { until } from './helpers/poll.js';
import { startGate } from './helpers/proxy.js';
import { digestOf, postPaths, startServe } from './helpers/server.js';

// Piece length 16K (the helpers' default): the 41 KB file is 3 pieces, its
// last one padded with 8 KB of zeros in the multi-file torrent.
const files = {
  'a+1.rpm': randomBytes(300_000),
  'b c.rpm': randomBytes(1_000_000),
  'exact.rpm': randomBytes(16_384),
  'tiny.rpm': randomBytes(41_000),
};
const paths = ['/pub/x/a%2B1.rpm', '/pub/x/b%20c.rpm', '/pub/x/exact.rpm', '/pub/x/tiny.rpm'];
const total = Object.values(files).reduce((n, b) => n + b.length, 0);

/** The summary line's counts. */
function summary(stderr: string): { peers: number; mirror: number; seeder: number; http: number } | null {
  const m = /fetched \d+ of \d+ files \(\d+ over BitTorrent\): peers=(\d+) mirror=(\d+) \(seeder=(\d+) http=(\d+)\)$/m.exec(stderr);
  return m ? { peers: Number(m[1]), mirror: Number(m[2]), seeder: Number(m[3]), http: Number(m[4]) } : null;
}

/** Bytes serve's access log says it sent for files (anything but the service's own paths). */
function fileBytes(log: string): number {
  let n = 0;
  for (const m of log.matchAll(/^\S+ GET (\/\S+) (\d{3}) (\d+) /gm)) if (!m[1]!.includes('/torrent_service/')) n += Number(m[3]);
  return n;
}

t.test('digest mode end to end: 412, POST, pieces by Range, no padding asked, then the cached GET', async (t) => {
  if (!need(t, 'libtorrent')) return;
  const m = await startMirror(t, { pub: { x: files }, other: { 'e.rpm': 'eee' } });
  const out = t.testdir();
  const r = await cli(['fetch', '--base', m.url, '-o', out, '--bt-port', String(await freePort()), ...paths, '/other/e.rpm']);
  t.equal(r.code, 0, r.stderr);
  for (const [name, data] of Object.entries(files)) t.ok(readFileSync(join(out, 'pub/x', name)).equals(data), `${name} identical`);
  t.equal(readFileSync(join(out, 'other/e.rpm'), 'utf8'), 'eee', 'a second prefix, a second torrent');
  t.match(r.stdout, /^bittorrent 300000 \/pub\/x\/a%2B1\.rpm$/m);
  t.match(r.stdout, /^bittorrent 1000000 \/pub\/x\/b%20c\.rpm$/m);
  t.match(r.stdout, /^bittorrent 16384 \/pub\/x\/exact\.rpm$/m);
  t.match(r.stdout, /^bittorrent 41000 \/pub\/x\/tiny\.rpm$/m);
  t.match(r.stdout, /^bittorrent 3 \/other\/e\.rpm$/m);
  const d = digestOf([...paths].sort());
  await m.serve.waitFor(new RegExp(`GET /pub/torrent_service/digest/${d} 412`));
  await m.serve.waitFor(new RegExp(`POST /pub/torrent_service/digest/${d} 200`));
  t.same(readdirSync(out).sort(), ['other', 'pub'], 'no temporary directory left');

  const s = summary(r.stderr);
  t.ok(s, r.stderr);
  t.match(s, { peers: 0, seeder: 0 }, 'no peer, no seeder: all from the mirror');
  t.equal(s!.mirror, s!.http, 'mirror= is seeder= plus http=');
  t.ok(s!.mirror >= total + 3, `mirror=${s!.mirror}: at least every file's bytes`);
  await until(3000, () => fileBytes(m.serve.stderr()) >= s!.mirror);
  t.equal(fileBytes(m.serve.stderr()), s!.mirror, 'exactly what the mirror says it sent');
  t.match(m.serve.stderr(), /GET \/pub\/x\/tiny\.rpm 206 /, 'pieces by Range on the file itself');
  t.notMatch(m.serve.stderr(), /nullfile/, 'no request for padding');

  const again = t.testdir();
  const r2 = await cli(['fetch', '--base', m.url, '-o', again, '--bt-port', String(await freePort()), ...paths]);
  t.equal(r2.code, 0);
  await m.serve.waitFor(new RegExp(`GET /pub/torrent_service/digest/${d} 200`));
  t.ok(readFileSync(join(again, 'pub/x/tiny.rpm')).equals(files['tiny.rpm']));
});

t.test('a file whose pieces the mirror never sends comes over plain HTTP; the others over BitTorrent', async (t) => {
  if (!need(t, 'libtorrent')) return;
  const m = await startMirror(t, { pub: { x: files } });
  const gate = await startGate(t, m.url);
  // tiny.rpm is last in the torrent: the files before it are not kept waiting behind its stuck requests.
  gate.policy = (r) => (r.path.includes('tiny') ? { kind: 'hang' } : { kind: 'pass' });
  const out = t.testdir();
  const r = await cli(['fetch', '--base', gate.url, '-o', out, '--bt-port', String(await freePort()), '--stall-timeout', '2s', ...paths]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /BitTorrent stopped for \/pub \(stalled 2000 ms\): the rest over HTTP/);
  t.match(r.stdout, /^direct 41000 \/pub\/x\/tiny\.rpm$/m);
  t.match(r.stdout, /^bittorrent 1000000 \/pub\/x\/b%20c\.rpm$/m);
  for (const [name, data] of Object.entries(files)) t.ok(readFileSync(join(out, 'pub/x', name)).equals(data), `${name} identical`);
  t.ok(gate.requests.some((q) => q.pieces && q.path === '/pub/x/tiny.rpm'), 'its pieces were asked for');
  t.match(summary(r.stderr), { peers: 0, seeder: 0, mirror: total, http: total }, 'every byte counted once: its pieces never came');
  t.same(readdirSync(out), ['pub'], 'no temporary directory left');
});

t.test('interrupted (SIGINT): exit 130, no temporary directory left', async (t) => {
  if (!need(t, 'libtorrent')) return;
  const m = await startMirror(t, { pub: { x: files } });
  const gate = await startGate(t, m.url);
  gate.policy = { kind: 'hang' };
  const out = t.testdir();
  const abort = new AbortController();
  const stderr = new PassThrough();
  let said = '';
  stderr.on('data', (c: Buffer) => (said += c.toString()));
  const running = run({
    argv: ['fetch', '--base', gate.url, '-o', out, '--bt-port', String(await freePort()), ...paths],
    cwd: process.cwd(),
    vars: {},
    stdout: new PassThrough().resume(),
    stderr,
    signal: abort.signal,
    defaultConfigFile: '/nonexistent',
  });
  t.ok(await until(10_000, () => gate.requests.some((q) => q.pieces)), 'pieces asked for');
  abort.abort('SIGINT');
  t.equal(await running, 130);
  t.match(said, /^pkgtorrent: interrupted$/m);
  t.same(readdirSync(out), [], 'nothing left');
});

t.test('the service refuses the set: every file over HTTP; a missing file fails alone', async (t) => {
  if (!need(t, 'libtorrent')) return;
  const dir = scratch(t, 'refuse');
  writeTree(join(dir, 'root'), { pub: { x: files } });
  // --max-paths 2: the POST of four paths is refused with 413.
  const srv = await startServe(t, { root: join(dir, 'root'), cacheDir: join(dir, 'cache'), files: true, args: ['--max-paths', '2'] });
  const out = t.testdir();
  const r = await cli(['fetch', '--base', srv.url, '-o', out, '--bt-port', String(await freePort()), ...paths]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /no torrent for \/pub \(digest POST answered 413/);
  for (const [name, data] of Object.entries(files)) t.ok(readFileSync(join(out, 'pub/x', name)).equals(data), `${name} identical, direct`);
  t.match(r.stdout, /^direct 300000 \/pub\/x\/a%2B1\.rpm$/m);
  t.match(summary(r.stderr), { peers: 0, seeder: 0, mirror: total, http: total });

  const out2 = t.testdir();
  const r2 = await cli(['fetch', '--base', srv.url, '-o', out2, '--bt-port', String(await freePort()), '/pub/x/tiny.rpm', '/pub/x/missing.rpm']);
  t.equal(r2.code, 1, 'a failed file fails the run');
  t.match(r2.stdout, /^failed 0 \/pub\/x\/missing\.rpm \(.*404\)$/m);
  t.ok(readFileSync(join(out2, 'pub/x/tiny.rpm')).equals(files['tiny.rpm']), 'the other file still arrives');
  t.notOk(existsSync(join(out2, 'pub/x/missing.rpm')), 'no partial file');
  t.same(readdirSync(join(out2, 'pub/x')), ['tiny.rpm']);
});

t.test('paths on stdin; bad usage is one line, exit 2', async (t) => {
  if (!need(t, 'libtorrent')) return;
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
  t.equal(text.trim().split('\n').length, 4);
  t.ok(readFileSync(join(out, 'pub/x/a+1.rpm')).equals(files['a+1.rpm']));

  const bad = await cli(['fetch', '--base', 'ftp://x', '-o', out, '/pub/a']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /^pkgtorrent: invalid --base 'ftp:\/\/x': use http or https\n$/);
  const dots = await cli(['fetch', '--base', m.url, '-o', out, '/pub/../etc/passwd']);
  t.equal(dots.code, 2);
  t.match(dots.stderr, /invalid path '\/pub\/\.\.\/etc\/passwd'/);
  const ports = await cli(['fetch', '--base', m.url, '-o', out, '--bt-port', '7000-6000', '/pub/x/tiny.rpm']);
  t.equal(ports.code, 2);
  t.match(ports.stderr, /^pkgtorrent: invalid --bt-port '7000-6000': expected PORT or FIRST-LAST\n$/);
});

/** The fetch command alone, with its test settings; a PkgError is the exit code and one line, as the CLI makes it. */
async function fetchWith(testing: FetchTesting, argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const sink = (add: (s: string) => void) => new PassThrough().on('data', (c: Buffer) => add(c.toString()));
  const ctx = new Context({ argv, cwd: process.cwd(), vars: {}, stdout: sink((s) => (stdout += s)), stderr: sink((s) => (stderr += s)), defaultConfigFile: '/nonexistent' });
  const program = buildProgram(ctx, [{ register: (p, c) => register(p, c, testing), globals: ['config'] }]);
  try {
    await program.parseAsync(['fetch', ...argv], { from: 'user' });
    return { code: ctx.exitCode, stdout, stderr };
  } catch (err) {
    if (!(err instanceof PkgError)) throw err;
    return { code: err.exitCode, stdout, stderr: stderr + `pkgtorrent: ${err.message}\n` };
  }
}

t.test('--http-only: no torrent asked for and no engine needed', async (t) => {
  const m = await startMirror(t, { pub: { x: files } });
  const out = t.testdir();
  const r = await fetchWith({ engineProgram: '/nonexistent/pkgtorrent-bt' }, ['--base', m.url, '-o', out, '--http-only', ...paths]);
  t.equal(r.code, 0, r.stderr);
  for (const [name, data] of Object.entries(files)) t.ok(readFileSync(join(out, 'pub/x', name)).equals(data), `${name} identical`);
  t.match(r.stdout, /^direct 1000000 \/pub\/x\/b%20c\.rpm$/m);
  t.match(summary(r.stderr), { peers: 0, seeder: 0, mirror: total, http: total });
  t.match(r.stderr, /fetched 4 of 4 files \(0 over BitTorrent\)/);
  await until(3000, () => fileBytes(m.serve.stderr()) >= total);
  t.notMatch(m.serve.stderr(), /torrent_service/, 'the service was not asked');
  t.same(readdirSync(out), ['pub'], 'no temporary directory');
});

t.test('no engine: one line naming python3-libtorrent, exit 1, nothing asked of the mirror', async (t) => {
  const m = await startMirror(t, { pub: { x: files } });
  const dir = t.testdir();
  // A python without the module: the engine's own first words.
  const noModule = join(dir, 'no-libtorrent');
  writeFileSync(noModule, `#!/bin/sh\necho "ModuleNotFoundError: No module named 'libtorrent'" >&2\nexit 1\n`);
  chmodSync(noModule, 0o755);
  for (const [engine, why] of [
    ['/nonexistent/pkgtorrent-bt', /^pkgtorrent: cannot start the BitTorrent engine \/nonexistent\/pkgtorrent-bt: .*ENOENT; install python3-libtorrent/],
    [noModule, /^pkgtorrent: the BitTorrent engine exited at start \(1\): ModuleNotFoundError: No module named 'libtorrent'; install python3-libtorrent/],
  ] as const) {
    const out = join(dir, 'out');
    const r = await fetchWith({ engineProgram: engine }, ['--base', m.url, '-o', out, ...paths]);
    t.equal(r.code, 1);
    t.match(r.stderr, why);
    t.match(r.stderr, /\(the package's name on Debian and Fedora\), or fetch over plain HTTP with --http-only\n$/);
    t.equal(r.stderr.split('\n').length, 2, 'one line');
    t.equal(r.stdout, '');
    t.notOk(existsSync(out), 'nothing written');
  }
  await new Promise((r) => setTimeout(r, 200));
  t.notMatch(m.serve.stderr(), /GET \/pub/, 'the mirror was asked nothing');
});

/** How many seeders the tracker has for the info hash (a scrape). */
function seeders(announce: string, infoHash: string): Promise<number> {
  const ih = Buffer.from(infoHash, 'hex');
  const url = `${announce.replace(/\/announce$/, '/scrape')}?info_hash=${Array.from(ih, (b) => `%${b.toString(16).padStart(2, '0')}`).join('')}`;
  return new Promise((resolve) => {
    const req = httpRequest(url, { timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('latin1').on('data', (c: string) => (body += c));
      res.on('end', () => resolve(Number(/8:completei(\d+)e/.exec(body)?.[1] ?? 0)));
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

t.test('from a peer while the mirror refuses pieces: every byte counted as the peers', async (t) => {
  if (!need(t, 'libtorrent') || !need(t, 'opentracker')) return;
  const tracker = await startOpentracker(t);
  const dir = scratch(t, 'fetch-peer');
  writeTree(join(dir, 'root'), { pub: { x: files } });
  writeFileSync(join(dir, 'trackers'), `${tracker.http}\n`);
  const srv = await startServe(t, { root: join(dir, 'root'), cacheDir: join(dir, 'cache'), files: true, trackers: join(dir, 'trackers') });
  const sorted = [...paths].sort();
  const got = await postPaths(srv.url, 'pub', sorted, digestOf(sorted));
  t.equal(got.status, 200);
  const set = parseSetTorrent(got.body, 'pub')!;
  t.ok(set.files.some((f) => f.pad), 'the torrent has padding');
  await tracker.allow(set.infoHash);
  // A peer that has the files: the mirror's own tree, seeded as it is (padding is no file).
  const peer = await BtEngine.start({ listen: `127.0.0.1:${await freePort()}`, loopback: true });
  t.teardown(() => peer.close());
  await peer.add({ torrent: got.body, savePath: join(dir, 'root'), seed: true });
  t.ok(await until(15_000, async () => (await seeders(tracker.http, set.infoHash)) > 0, 200), 'the peer announced itself');

  const gate = await startGate(t, srv.url);
  gate.policy = { kind: 'refuse' };
  const out = t.testdir();
  // loopback: the tracker names every peer at 127.0.0.1 (its own probe's too), one address for libtorrent.
  const r = await fetchWith({ btLoopback: true }, ['--base', gate.url, '-o', out, '--bt-port', String(await freePort()), '--stall-timeout', '20s', ...paths]);
  t.equal(r.code, 0, r.stderr);
  for (const [name, data] of Object.entries(files)) t.ok(readFileSync(join(out, 'pub/x', name)).equals(data), `${name} identical`);
  t.match(r.stdout, /^bittorrent 41000 \/pub\/x\/tiny\.rpm$/m);
  const s = summary(r.stderr)!;
  t.match(s, { mirror: 0, seeder: 0, http: 0 }, 'nothing from the mirror');
  // Blocks are 16 KiB: a file's last one carries its padding zeros too.
  t.ok(s.peers >= total && s.peers <= set.length, `peers=${s.peers}: every byte, from the peer (${total} to ${set.length})`);
  t.equal(gate.pieceBytes, 0, 'the mirror sent no piece');
});

t.test('the piece map of the service layout: each piece in one file, padding as zeros after it', async (t) => {
  const set = (files: Array<[string, number, boolean?]>): SetTorrent => {
    const length = files.reduce((n, [, l]) => n + l, 0);
    const pieces = Buffer.alloc(20 * Math.ceil(length / 16384));
    return { torrent: Buffer.alloc(0), infoHash: '', name: 'pub', length, pieceLength: 16384, pieces, trackers: [], files: files.map(([p, l, pad]) => ({ path: p.split('/'), length: l, pad: pad === true })) };
  };
  const good = set([
    ['x/a+1.rpm', 20_000],
    ['torrent_service/nullfile/12768_0', 12_768, true],
    ['x/empty.rpm', 0],
    ['x/b c.rpm', 41_000],
    ['torrent_service/nullfile/8152_0', 8_152, true],
    ['x/c.rpm', 16_384],
  ]);
  const map = serviceLayoutMap(good, 'http://m:8/', '/save')!;
  t.ok(map);
  t.same(
    map.files.map((f) => [f.url.href, f.path, f.length]),
    [
      ['http://m:8/pub/x/a%2B1.rpm', '/save/pub/x/a+1.rpm', 20_000],
      ['http://m:8/pub/x/empty.rpm', '/save/pub/x/empty.rpm', 0],
      ['http://m:8/pub/x/b%20c.rpm', '/save/pub/x/b c.rpm', 41_000],
      ['http://m:8/pub/x/c.rpm', '/save/pub/x/c.rpm', 16_384],
    ],
    'real files in order, each segment percent-encoded as the web seed is asked',
  );
  t.same(map.span(1), { file: 0, offset: 16_384, length: 3_616, zeroTail: 12_768 });
  t.same(map.span(2), { file: 2, offset: 0, length: 16_384, zeroTail: 0 });
  t.same(map.span(4), { file: 2, offset: 32_768, length: 8_232, zeroTail: 8_152 });
  t.same(map.span(5), { file: 3, offset: 0, length: 16_384, zeroTail: 0 });
  t.same(oneRequest(map, { first: 0, count: 4 }), { first: 0, count: 2 }, 'a request ends at its file\'s padding');
  t.same(oneRequest(map, { first: 3, count: 3 }), { first: 3, count: 2 });
  t.same(oneRequest(map, { first: 5, count: 1 }), { first: 5, count: 1 });

  t.equal(serviceLayoutMap(set([['x/a', 20_000], ['x/b', 16_384]]), 'http://m', '/s'), null, 'a file not on a piece boundary');
  t.equal(serviceLayoutMap(set([['x/a', 20_000], ['p', 30_000, true], ['x/b', 16_384]]), 'http://m', '/s'), null, 'padding past the boundary');
  t.equal(serviceLayoutMap(set([['p', 16_384, true], ['x/b', 16_384]]), 'http://m', '/s'), null, 'padding before any file');
  t.ok(serviceLayoutMap(set([['x/a', 16_384], ['x/b', 100]]), 'http://m', '/s'), 'no padding needed after a whole number of pieces');
});
