// Interoperability: real BitTorrent clients from Debian (libtorrent, aria2,
// Transmission) download through `pkgtorrent serve --files` as web seed, a
// second libtorrent peer completes from the first through opentracker, and a
// torrent from `pkgtorrent make` downloads too. Every byte that lands on disk
// is compared with the mirror. Everything runs on 127.0.0.1; no DHT, no
// outside traffic. At the end the suite prints the compatibility table (client
// × torrent kind) of what it checked.
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { need, ltInfo } from './helpers/oracles.js';
import { decodeTorrent } from './helpers/bencode.js';
import { bin } from './helpers/cli.js';
import { digestOf, startServe, request, postPaths, type ServeProcess } from './helpers/server.js';
import { aria2Download, libtorrentDownload, libtorrentSeed, scratch, transmissionDownload, type DownloadResult } from './helpers/clients.js';
import { startOpentracker } from './helpers/opentracker.js';

const PL = 16384;
const SVC = 'torrent_service';
/**
 * Per client run. A download here takes 0.1–3 s (aria2 and Transmission
 * spend about a second in their own shutdown); bad data never completes, so a
 * broken service shows as a timeout, and 13 of them must still fit in tap's
 * 300 s per file.
 */
const CLIENT_TIMEOUT_MS = 15_000;

// The mirror. Sizes are the awkward ones for padding: tiny, an exact piece
// multiple, one byte over, several pieces plus a tail, and a name that needs
// percent-encoding in a web-seed URL.
const FILES: Record<string, number> = {
  'pub/isos/small.iso': 3 * PL + 1000,
  'pub/pkgs/tiny.rpm': 5,
  'pub/pkgs/exact.rpm': 2 * PL,
  'pub/pkgs/over.rpm': PL + 1,
  'pub/pkgs/sub/deep.rpm': 7,
  'pub/pkgs/a b+c.rpm': 3 * PL - 7,
  'pub/pkgs/last.rpm': 2 * PL + 100,
  'pub/glob/a.deb': 2 * PL + 3,
  'pub/glob/b.deb': 1,
  // Empty files among others: in the torrent as zero-length entries, which every client must accept.
  'pub/glob/b-empty.deb': 0,
  'pub/glob/c.deb': PL,
  'pub/glob/not-matched.txt': 10,
  'made/one.bin': PL - 1,
  'made/two.bin': 4 * PL,
  'made/dir/three.bin': PL + 1,
};
const DIGEST_PATHS = ['tiny.rpm', 'exact.rpm', 'over.rpm', 'sub/deep.rpm', 'a b+c.rpm', 'last.rpm'].map(
  // The URL paths a client would ask for: percent-encoded segments.
  (p) => `/pub/pkgs/${p.split('/').map(encodeURIComponent).join('/')}`,
);
const GLOB_FILES = ['glob/a.deb', 'glob/b-empty.deb', 'glob/b.deb', 'glob/c.deb'];

type Kind = 'simple single file' | 'digest, padded multi-file' | 'simple glob, padded multi-file' | 'make (mktorrent layout)' | 'peer to peer via opentracker';
type ClientName = 'libtorrent' | 'aria2' | 'Transmission';
const table = new Map<string, string>();
const record = (client: ClientName, kind: Kind, outcome: string) => table.set(`${client}\t${kind}`, outcome);

// Temp dirs of our own rather than t.testdir: see scratch().
const root = join(scratch(t, 'interop'), 'root');
for (const [rel, size] of Object.entries(FILES)) {
  mkdirSync(join(root, rel, '..'), { recursive: true });
  writeFileSync(join(root, rel), randomBytes(size));
}

/** Every regular file under dir, relative, with '/' separators. */
function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)).split(sep).join('/'))
    .sort();
}

interface Checked {
  /** Padding entries the client wrote to disk (fetched or zero-filled). */
  padOnDisk: number;
  /** Zero-length files of the torrent the client did not create. */
  emptyMissing: number;
}

/**
 * Compares what a client wrote to `dir` with the mirror, entry by entry of
 * the torrent: every real file byte for byte, every padding file present on
 * disk all zeros of the right length, and nothing else on disk.
 * `mirrorOf(path)` maps a torrent path (name/...) to the mirror file.
 */
function compareWithMirror(t: Test, torrent: Buffer, dir: string, expected: string[], mirrorOf: (p: string) => string): Checked {
  const info = decodeTorrent(torrent).info;
  const entries: Array<{ path: string; length: number; pad: boolean }> = info.files
    ? info.files.map((f: { path: string[]; length: number; attr?: string }) => ({
        path: [info.name, ...f.path].join('/'),
        length: f.length,
        pad: (f.attr ?? '').includes('p'),
      }))
    : [{ path: info.name, length: info.length, pad: false }];
  const real = entries.filter((e) => !e.pad);
  t.same(
    real.map((e) => e.path),
    expected,
    'the torrent holds exactly the files asked for',
  );
  let same = 0;
  let emptyMissing = 0;
  for (const e of real) {
    const got = join(dir, e.path);
    if (!existsSync(got) && e.length === 0) {
      // Transmission 3 completes such a torrent but does not create zero-length files.
      emptyMissing++;
      same++;
      continue;
    }
    if (!existsSync(got)) {
      t.fail(`${e.path}: not downloaded`);
      continue;
    }
    const want = readFileSync(mirrorOf(e.path));
    if (readFileSync(got).equals(want) && want.length === e.length) same++;
    else t.fail(`${e.path}: differs from the mirror`);
  }
  t.equal(same, real.length, `all ${real.length} files equal the mirror byte for byte`);
  let padOnDisk = 0;
  for (const e of entries.filter((x) => x.pad)) {
    const got = join(dir, e.path);
    if (!existsSync(got)) continue;
    padOnDisk++;
    const b = readFileSync(got);
    t.ok(b.length === e.length && b.every((x) => x === 0), `${e.path}: padding is ${e.length} zero bytes`);
  }
  const known = new Set(entries.map((e) => e.path));
  t.same(
    walk(dir).filter((p) => !known.has(p)),
    [],
    'no other files left on disk (control files of an unfinished download)',
  );
  return { padOnDisk, emptyMissing };
}

/** Fetches the three service torrents from `serve`, checking the digest protocol on the way. */
async function fetchServiceTorrents(t: Test, server: ServeProcess, dir: string) {
  const sorted = [...DIGEST_PATHS].sort();
  const digest = digestOf(sorted);
  const first = await request(server.url, `/pub/${SVC}/digest/${digest}`);
  t.equal(first.status, 412, 'digest: GET of an unknown digest is 412');
  const posted = await postPaths(server.url, 'pub', sorted, digest);
  t.equal(posted.status, 200, 'digest: POST builds it', { diagnostic: posted.status !== 200, body: posted.body.toString().slice(0, 500) });
  const single = await request(server.url, `/pub/${SVC}/simple/pub/isos/small.iso`);
  t.equal(single.status, 200, 'simple: single file');
  const glob = await request(server.url, `/pub/${SVC}/simple/pub/glob/*.deb`);
  t.equal(glob.status, 200, 'simple: glob');
  const out = { single: join(dir, 'single.torrent'), digest: join(dir, 'digest.torrent'), glob: join(dir, 'glob.torrent') };
  writeFileSync(out.single, single.body);
  writeFileSync(out.digest, posted.body);
  writeFileSync(out.glob, glob.body);
  const ok = first.status === 412 && [posted, single, glob].every((r) => r.status === 200);
  if (ok) {
    const pads = (b: Buffer) => decodeTorrent(b).info.files.filter((f: { attr?: string }) => f.attr === 'p').length;
    // Without padding entries the nullfile route would go untested.
    t.ok(pads(posted.body) > 0 && pads(glob.body) > 0, 'both multi-file torrents have padding entries');
  }
  // The torrent lists the files in the order of the request (sorted URL
  // paths), as file system paths.
  return { ok, out, digestOrder: sorted.map((p) => decodeURIComponent(p.slice(1))) };
}

const NULLFILE_LOG = /GET \/pub\/torrent(?:_|%5F)service\/nullfile\/\d+(?:_|%5F)\d+ 20[06] /i;

interface ClientSpec {
  name: ClientName;
  tool: string;
  /** Clients without BEP 47 support fetch padding from the web seed and write it to disk. */
  fetchesPadding: boolean;
  download: (t: Test, torrent: string, dir: string) => Promise<DownloadResult & { hashFailed?: number }>;
}

const CLIENTS: ClientSpec[] = [
  { name: 'libtorrent', tool: 'libtorrent', fetchesPadding: false, download: (t, f, d) => libtorrentDownload(t, f, d, { timeoutMs: CLIENT_TIMEOUT_MS }) },
  { name: 'aria2', tool: 'aria2c', fetchesPadding: true, download: (t, f, d) => aria2Download(t, f, d, { timeoutMs: CLIENT_TIMEOUT_MS }) },
  { name: 'Transmission', tool: 'transmission-cli', fetchesPadding: true, download: (t, f, d) => transmissionDownload(t, f, d, { timeoutMs: CLIENT_TIMEOUT_MS }) },
];

/** One client, one torrent: download, then compare with the mirror and record the outcome. */
async function downloadAndCompare(
  t: Test,
  c: ClientSpec,
  kind: Kind,
  torrent: string,
  dir: string,
  expected: string[],
  mirrorOf: (p: string) => string,
  opts: { padded: boolean; server?: ServeProcess },
): Promise<void> {
  const logBefore = opts.server?.stderr().length ?? 0;
  const started = Date.now();
  const r = await c.download(t, torrent, dir);
  const ms = Date.now() - started;
  t.ok(r.ok, `${c.name} completes`, { diagnostic: !r.ok, detail: r.detail });
  if (r.hashFailed !== undefined) t.equal(r.hashFailed, 0, 'no piece failed its hash check');
  const { padOnDisk, emptyMissing } = compareWithMirror(t, readFileSync(torrent), dir, expected, mirrorOf);
  let note = emptyMissing ? ', does not create empty files' : '';
  if (opts.padded) {
    if (c.fetchesPadding) {
      // These clients treat padding as ordinary files and get them from the web seed.
      const log = opts.server!.stderr().slice(logBefore);
      t.match(log, NULLFILE_LOG, 'padding was fetched from the nullfile route through the web seed');
      t.ok(padOnDisk > 0, 'padding files were written to disk');
      note += ', padding via web seed';
    } else {
      t.equal(padOnDisk, 0, 'BEP 47: padding is skipped, not written');
      note += ', skips padding (BEP 47)';
    }
  }
  // Each call runs in a subtest of its own: any failure in it is this pair's.
  record(c.name, kind, t.counts.fail === 0 ? `yes (${ms} ms${note})` : 'FAILS');
}

t.test('web seed: every client, every kind of service torrent', async (t) => {
  const dir = scratch(t, 'interop');
  for (const d of ['cache', 'torrents', 'dl']) mkdirSync(join(dir, d));
  const server = await startServe(t, { root, cacheDir: join(dir, 'cache'), files: true, pieceLength: '16K' });
  const { ok, out, digestOrder } = await fetchServiceTorrents(t, server, join(dir, 'torrents'));
  // Clients given a torrent that is not one would only run into their timeouts.
  if (!ok) return;
  const mirror = (p: string) => join(root, p);

  for (const c of CLIENTS) {
    await t.test(c.name, async (t) => {
      if (!need(t, c.tool)) return;
      const dl = (k: string) => join(dir, 'dl', c.name, k);
      await t.test('simple: single file', (t) =>
        downloadAndCompare(t, c, 'simple single file', out.single, dl('single'), ['small.iso'], () => join(root, 'pub/isos/small.iso'), { padded: false }),
      );
      await t.test('digest: padded multi-file (tiny, exact multiple, one byte over, encoded name)', (t) =>
        downloadAndCompare(t, c, 'digest, padded multi-file', out.digest, dl('digest'), digestOrder, mirror, { padded: true, server }),
      );
      await t.test('simple: glob, padded multi-file', (t) =>
        downloadAndCompare(
          t,
          c,
          'simple glob, padded multi-file',
          out.glob,
          dl('glob'),
          GLOB_FILES.map((f) => `pub/${f}`),
          mirror,
          { padded: true, server },
        ),
      );
    });
  }
});

t.test('peer to peer: a second libtorrent completes from the first through opentracker', async (t) => {
  if (!need(t, 'libtorrent') || !need(t, 'opentracker')) return;
  const dir = scratch(t, 'interop');
  for (const d of ['cache', 'a', 'b']) mkdirSync(join(dir, d));
  const tracker = await startOpentracker(t);
  // The trackers file serve reads: both of opentracker's protocols, each its own tier.
  writeFileSync(join(dir, 'trackers'), `# test tracker\n${tracker.http}\n${tracker.udp}\n`);
  const server = await startServe(t, { root, cacheDir: join(dir, 'cache'), files: true, trackers: join(dir, 'trackers') });
  const sorted = [...DIGEST_PATHS].sort();
  const posted = await postPaths(server.url, 'pub', sorted, digestOf(sorted));
  t.equal(posted.status, 200, 'digest torrent built');
  if (posted.status !== 200) return;
  const torrent = join(dir, 'p2p.torrent');
  writeFileSync(torrent, posted.body);
  const info = ltInfo(torrent);
  t.same(
    info.trackers.map((x) => x.url).sort(),
    [tracker.http, tracker.udp].sort(),
    'the torrent announces to both trackers of the trackers file',
  );
  t.equal(new Set(info.trackers.map((x) => x.tier)).size, 2, 'each tracker in its own tier');
  await tracker.allow(info.infoHash);

  // A's timeout covers its own download and seeding through all of B's.
  const a = await libtorrentSeed(t, torrent, join(dir, 'a'), { timeoutMs: 2 * CLIENT_TIMEOUT_MS });
  t.ok(a.ok, 'A completes from the web seed and keeps seeding', { diagnostic: !a.ok, detail: a.detail });
  if (!a.ok) return;
  t.ok(a.webSeeds.length > 0, 'A had the web seed');
  const b = await libtorrentDownload(t, torrent, join(dir, 'b'), { noWebSeed: true, timeoutMs: CLIENT_TIMEOUT_MS });
  await a.stop();
  t.ok(b.ok, 'B completes', { diagnostic: !b.ok, detail: b.detail });
  t.same(b.webSeeds, [], 'B had no web seed, so every byte came from A');
  t.ok(b.payloadDownloaded > 0, `B downloaded ${b.payloadDownloaded} bytes from its peer`);
  t.equal(b.hashFailed, 0, 'no piece failed its hash check');
  // announce_to_all_tiers is on in the helper, so each tier is announced to.
  for (const url of [tracker.http, tracker.udp]) {
    const replied = b.alerts.some((x) => x.startsWith('tracker_reply_alert') && x.includes(url));
    t.ok(replied, `B got a reply from ${url}`, { diagnostic: !replied, alerts: b.alerts });
  }
  compareWithMirror(t, posted.body, join(dir, 'b'), sorted.map((p) => decodeURIComponent(p.slice(1))), (p) => join(root, p));
  record('libtorrent', 'peer to peer via opentracker', t.counts.fail === 0 ? 'yes' : 'FAILS');
});

t.test('make: a torrent from `pkgtorrent make -a TRACKER -w SERVE` downloads', async (t) => {
  if (!need(t, 'libtorrent') || !need(t, 'opentracker')) return;
  const dir = scratch(t, 'interop');
  for (const d of ['cache', 'dl']) mkdirSync(join(dir, d));
  const tracker = await startOpentracker(t);
  const server = await startServe(t, { root, cacheDir: join(dir, 'cache'), files: true });
  const torrent = join(dir, 'made.torrent');
  // A directory under the root: the web seed (the mirror's root URL) serves
  // it at /made/..., where a BEP 19 client looks for NAME/PATH.
  const made = await bin(['make', '-a', tracker.http, '-w', `${server.url}/`, '-l', '16K', join(root, 'made'), '-o', torrent], { timeoutMs: 30_000 });
  t.equal(made.code, 0, 'make exits 0', { diagnostic: made.code !== 0, stderr: made.stderr });
  if (made.code !== 0) return;
  const info = ltInfo(torrent);
  t.same(info.webSeeds, [`${server.url}/`], 'web seed as given');
  t.same(
    info.trackers.map((x) => x.url),
    [tracker.http],
    'tracker as given',
  );
  t.ok(info.numPieces > 3, 'several pieces');
  await tracker.allow(info.infoHash);
  const expected = walk(join(root, 'made')).map((p) => `made/${p}`);
  const sorted = [...expected].sort();
  for (const c of CLIENTS) {
    await t.test(c.name, async (t) => {
      if (!need(t, c.tool)) return;
      const started = Date.now();
      const target = join(dir, 'dl', c.name);
      const r = await c.download(t, torrent, target);
      const ms = Date.now() - started;
      t.ok(r.ok, `${c.name} completes`, { diagnostic: !r.ok, detail: r.detail });
      // mktorrent's layout orders files by path; compare as a set.
      const entries = decodeTorrent(readFileSync(torrent)).info.files.map((f: { path: string[] }) => ['made', ...f.path].join('/'));
      t.same([...entries].sort(), sorted, 'the torrent holds the directory');
      compareWithMirror(t, readFileSync(torrent), target, sorted, (p) => join(root, p));
      record(c.name, 'make (mktorrent layout)', t.counts.fail === 0 ? `yes (${ms} ms)` : 'FAILS');
    });
  }
});

t.teardown(() => {
  // The compatibility table for the README, from what actually ran.
  const kinds: Kind[] = ['simple single file', 'digest, padded multi-file', 'simple glob, padded multi-file', 'make (mktorrent layout)', 'peer to peer via opentracker'];
  const clients: ClientName[] = ['libtorrent', 'aria2', 'Transmission'];
  const lines = [`| client | ${kinds.join(' | ')} |`, `|---|${kinds.map(() => '---').join('|')}|`];
  for (const c of clients) lines.push(`| ${c} | ${kinds.map((k) => table.get(`${c}\t${k}`) ?? 'not run').join(' | ')} |`);
  process.stderr.write(`# compatibility table\n${lines.map((l) => `# ${l}`).join('\n')}\n`);
});
