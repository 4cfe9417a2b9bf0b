// The private, source and web-seeds settings of served torrents (issue #21
// items 6 and 7): libtorrent reads what serve answers; a restart with another
// private flag or source answers other info hashes at once and never an old
// one; and real clients complete a download whose first web seed is dead
// from the second. Everything on 127.0.0.1, no DHT, LPD or PEX.
import t, { type Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import bencode from 'bencode';
import { cli } from './helpers/cli.js';
import { decodeTorrent } from './helpers/bencode.js';
import { libtorrent, need } from './helpers/oracles.js';
import { aria2Download, freePort, libtorrentDownload, scratch } from './helpers/clients.js';
import { digestOf, postPaths, request, startServe, type ServeProcess } from './helpers/server.js';
import { parsePackageTorrent } from '../src/proxy/lookup.js';

const PL = 16384;
const FILES: Record<string, number> = {
  'pub/p/a.rpm': 3 * PL + 100,
  'pub/p/b.rpm': PL - 7,
  'pub/p/sub/c.rpm': 2 * PL,
  'pub/p/d e.rpm': PL + 1,
};
const PATHS = Object.keys(FILES).map((rel) => `/${rel.split('/').map(encodeURIComponent).join('/')}`);
const DIGEST = digestOf(PATHS);
const SINGLE = '/pub/p/a.rpm';

function mirror(t: Test): { dir: string; root: string; cache: string } {
  const dir = scratch(t, 'settings');
  const root = join(dir, 'root');
  for (const [rel, size] of Object.entries(FILES)) {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), randomBytes(size));
  }
  mkdirSync(join(dir, 'cache'));
  return { dir, root, cache: join(dir, 'cache') };
}

const builds = (s: ServeProcess) => [...s.stderr().matchAll(/built ([0-9a-f]+(?:_s)?): (\d+) files?, (\d+) hashed/g)].map((m) => ({ key: m[1]!, hashed: Number(m[3]) }));
const sha1hex = (b: Uint8Array) => createHash('sha1').update(b).digest('hex');
/** The info hash as a general bencoder gives it for a torrent's info dictionary with `extra` keys added. */
const hashWith = (torrent: Buffer, extra: Record<string, unknown>) => sha1hex(bencode.encode({ ...(bencode.decode(torrent) as { info: object }).info, ...extra }));

interface LtView {
  infoHash: string;
  priv: boolean;
  source: string | null;
  webSeeds: string[];
}

/** How libtorrent reads a torrent: its info hash, private flag, the source in its info section, its web seeds. */
function ltView(t: Test, torrent: Buffer): LtView {
  const path = join(scratch(t, 'lt'), 'x.torrent');
  writeFileSync(path, torrent);
  return libtorrent<LtView>(
    String.raw`
import json, sys, libtorrent as lt
ti = lt.torrent_info(sys.argv[1])
info = lt.bdecode(ti.info_section())
src = info.get(b"source")
print(json.dumps({"infoHash": str(ti.info_hash()), "priv": ti.priv(), "source": src.decode() if src is not None else None,
                  "webSeeds": [w["url"] for w in ti.web_seeds()]}))
`,
    [path],
  );
}

t.test('libtorrent reads the private flag, the source and every web seed in order', async (t) => {
  if (!need(t, 'libtorrent')) return;
  const m = mirror(t);
  const srv = await startServe(t, {
    root: m.root,
    cacheDir: m.cache,
    inProcess: true,
    args: ['--private', '--source', 'fleet-a', '--web-seeds', 'http://m2.example:8080/mirror/', '--web-seeds', 'https://cdn.example'],
  });
  const multi = await postPaths(srv.url, 'pub', PATHS, DIGEST);
  t.equal(multi.status, 200, multi.body.toString());
  t.same(ltView(t, multi.body), {
    infoHash: multi.headers['content-disposition']!.toString().replace(/^attachment; filename=(\w+)\.torrent$/, '$1'),
    priv: true,
    source: 'fleet-a',
    // Multi-file: base URLs, the client appends the torrent's name and the paths.
    webSeeds: [`${srv.url}/`, 'http://m2.example:8080/mirror/', 'https://cdn.example/'],
  });
  const single = await request(srv.url, `/pub/torrent_service/simple${SINGLE}`);
  t.equal(single.status, 200);
  // The proxy reads it as private (no LPD or DHT peers to wait for) under the same info hash.
  t.match(parsePackageTorrent(single.body, 'a.rpm'), { private: true, infoHash: ltView(t, single.body).infoHash });
  t.match(ltView(t, single.body), {
    priv: true,
    source: 'fleet-a',
    // Single file: each base URL with the file's directory, as the mirror's own.
    webSeeds: [`${srv.url}/pub/p/`, 'http://m2.example:8080/mirror/pub/p/', 'https://cdn.example/pub/p/'],
  });
});

t.test('a restart with another private flag or source answers the new info hash at once, never the old one', async (t) => {
  const m = mirror(t);
  // The pre-hash fills the piece cache; none of the settings touch it.
  const hashed = await cli(['hash', '--root', m.root, '--cache-dir', m.cache, '--piece-length', '16K']);
  t.equal(hashed.code, 0, hashed.stderr);
  let srv: ServeProcess | null = null;
  const restart = async (args: string[]) => {
    await srv?.stop();
    srv = await startServe(t, { root: m.root, cacheDir: m.cache, inProcess: true, args });
    return srv;
  };
  const get = (s: ServeProcess) => request(s.url, `/pub/torrent_service/digest/${DIGEST}`);
  const post = async (s: ServeProcess) => {
    const r = await postPaths(s.url, 'pub', PATHS, DIGEST);
    t.equal(r.status, 200, r.body.toString());
    return r.body;
  };
  const simple = async (s: ServeProcess) => {
    const r = await request(s.url, `/pub/torrent_service/simple${SINGLE}`);
    t.equal(r.status, 200, r.body.toString());
    return r.body;
  };

  let s = await restart([]);
  const plain = await post(s);
  const plainSingle = await simple(s);
  t.equal((await get(s)).status, 200, 'cached: a digest GET answers');
  const plainHash = sha1hex(bencode.encode(decodeTorrent(plain).info));
  t.same(builds(s).map((b) => b.hashed), [0, 0], 'every piece from the pre-hashed cache', { stderr: s.stderr() });

  const seen = new Set([plainHash]);
  for (const [args, extra] of [
    [['--private'], { private: 1 }],
    [[], {}],
    [['--source', 'fleet-a'], { source: 'fleet-a' }],
    [['--source', 'fleet-b', '--private'], { private: 1, source: 'fleet-b' }],
    [['--source', 'fleet-b'], { source: 'fleet-b' }],
    [[], {}],
  ] as Array<[string[], Record<string, unknown>]>) {
    const what = args.join(' ') || 'neither';
    s = await restart(args);
    const cold = await get(s);
    t.equal(cold.status, 412, `${what}: the torrent cached with other settings is not answered (412)`);
    const answer = await post(s);
    const want = hashWith(plain, extra);
    t.equal(sha1hex(bencode.encode(decodeTorrent(answer).info)), want, `${what}: the info hash of the same info with ${JSON.stringify(extra)}`);
    const again = await get(s);
    t.equal(again.status, 200, `${what}: then the digest GET answers`);
    t.ok(again.body.equals(answer), `${what}: the new torrent`);
    const single = await simple(s);
    t.equal(sha1hex(bencode.encode(decodeTorrent(single).info)), hashWith(plainSingle, extra), `${what}: simple mode too, rebuilt at once`);
    t.same(builds(s).map((b) => b.hashed), [0, 0], `${what}: rebuilt from the piece cache, nothing hashed`);
    t.equal(seen.has(want), !Object.keys(extra).length, `${what}: ${Object.keys(extra).length ? 'a hash no other settings gave' : 'the plain hash again'}`);
    seen.add(want);
    if (need(t, 'libtorrent')) {
      const lt = ltView(t, answer);
      t.equal(lt.infoHash, want, `${what}: libtorrent's info hash`);
      t.equal(lt.priv, extra.private === 1, `${what}: libtorrent's priv()`);
      t.equal(lt.source, (extra.source as string | undefined) ?? null, `${what}: the source libtorrent reads`);
    }
  }
  await srv!.stop();

  // The caches stay the commands' own: hash finds every piece entry current, clean keeps the live entries.
  const rehash = await cli(['hash', '--root', m.root, '--cache-dir', m.cache, '--piece-length', '16K', '--json']);
  t.equal(rehash.code, 0, rehash.stderr);
  t.match(JSON.parse(rehash.stdout), { filesHashed: 0 }, 'hash finds every piece entry current');
  const clean = await cli(['cache', 'clean', '--root', m.root, '--cache-dir', m.cache, '--json']);
  t.equal(clean.code, 0, clean.stderr);
  const stats = JSON.parse((await cli(['cache', 'stats', '--cache-dir', m.cache, '--json'])).stdout);
  t.equal(stats.kinds.info.files, 2, 'the digest and the single file: one info entry each, of the last settings');
});

/** The files a download wrote under `dir`, compared byte for byte with the mirror. */
function sameAsMirror(t: Test, root: string, dir: string, rels: string[], what: string): void {
  for (const rel of rels) {
    let got: Buffer | null = null;
    try {
      got = readFileSync(join(dir, rel));
    } catch {
      // reported below
    }
    t.ok(got?.equals(readFileSync(join(root, rel))), `${what}: ${rel} downloaded intact`);
  }
}

t.test('aria2c and libtorrent complete with the first web seed dead and the second alive', async (t) => {
  const m = mirror(t);
  // The second web seed: another mirror of the same tree, which also answers the service's null files (aria2 fetches padding).
  const other = await startServe(t, { root: m.root, cacheDir: join(m.dir, 'other-cache'), files: true, inProcess: true });
  // The mirror's own web seed points to a port nothing listens on.
  const dead = `http://127.0.0.1:${await freePort()}`;
  const srv = await startServe(t, { root: m.root, cacheDir: m.cache, inProcess: true, args: ['--base-url', dead, '--web-seeds', other.url] });
  const multi = await postPaths(srv.url, 'pub', PATHS, DIGEST);
  t.equal(multi.status, 200, multi.body.toString());
  const single = await request(srv.url, `/pub/torrent_service/simple${SINGLE}`);
  t.equal(single.status, 200, single.body.toString());
  t.same(decodeTorrent(multi.body)['url-list'].map(String), [`${dead}/`, `${other.url}/`], 'the dead mirror first');
  t.same(decodeTorrent(single.body)['url-list'].map(String), [`${dead}/pub/p/`, `${other.url}/pub/p/`]);
  const work = scratch(t, 'seeds');
  const torrents = { multi: join(work, 'multi.torrent'), single: join(work, 'single.torrent') };
  writeFileSync(torrents.multi, multi.body);
  writeFileSync(torrents.single, single.body);
  const expect = { multi: Object.keys(FILES), single: ['a.rpm'] };
  const rootOf = { multi: m.root, single: join(m.root, 'pub/p') };

  for (const kind of ['multi', 'single'] as const) {
    if (need(t, 'aria2c')) {
      const dir = join(work, `aria2-${kind}`);
      const r = await aria2Download(t, torrents[kind], dir, { timeoutMs: 60_000 });
      t.ok(r.ok, `aria2c completes the ${kind}-file torrent`, { diagnostic: !r.ok, detail: r.detail });
      sameAsMirror(t, rootOf[kind], dir, expect[kind], `aria2c ${kind}`);
    }
    if (need(t, 'libtorrent')) {
      const dir = join(work, `lt-${kind}`);
      const r = await libtorrentDownload(t, torrents[kind], dir, { timeoutMs: 60_000 });
      t.ok(r.ok, `libtorrent completes the ${kind}-file torrent`, { diagnostic: !r.ok, detail: r.detail, alerts: r.alerts });
      t.equal(r.hashFailed, 0, 'no piece failed its check');
      // libtorrent keeps its web seeds as a set: compared in any order.
      t.same([...r.webSeeds].sort(), decodeTorrent(kind === 'multi' ? multi.body : single.body)['url-list'].map(String).sort(), 'with both web seeds');
      sameAsMirror(t, rootOf[kind], dir, expect[kind], `libtorrent ${kind}`);
    }
  }
  // Every byte came from the second mirror: it served the files (and aria2's padding), the service none.
  t.match(other.stderr(), /GET \/pub\/p\//, 'the second web seed was asked for the files');
});
