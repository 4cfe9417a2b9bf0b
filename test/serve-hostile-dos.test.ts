// Requests that once took `serve` down or answered 500, each as a row of a
// table: expected status, then the process must still answer a normal
// request (sent while the hostile one is in flight), its memory must be back
// near its plateau at the end, no 5xx and no stack trace may appear, and
// nothing outside the root may be opened: inotifywait watches the directory
// outside (open and access events, so it works on noatime mounts too).
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { need } from './helpers/oracles.js';
import { watchOpens } from './helpers/watch-opens.js';
import { digestOf, postPaths, request, startServe, type HttpResponse, type ServeProcess } from './helpers/server.js';

const S = '/pub/torrent_service';
const NAME40 = ['a', 'b'].map((c) => c.repeat(40) + '.rpm');

const dir = t.testdir({
  root: {
    pub: {
      x: { 'ok.rpm': randomBytes(5000), 'empty.rpm': '', '.hidden.rpm': 'private' },
      redos: Object.fromEntries(NAME40.map((n) => [n, 'x'])),
      empties: { 'a.rpm': '', 'b.rpm': '' },
      big: { 'f.iso': randomBytes(70_000) },
    },
    '.git': { config: '[core]\n' },
  },
  outside: { 'secret.rpm': randomBytes(4096) },
});
const root = join(dir, 'root');
// The cache inside the root, and a symlink into it from the mirror's tree.
const cache = join(root, 'tcache');
mkdirSync(cache);
symlinkSync('../tcache', join(root, 'pub/cachelink'));
symlinkSync('../../../outside/secret.rpm', join(root, 'pub/x/evil.rpm'));

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

/** A normal request answers while `hostile` is in flight; both answers are returned. */
async function alongside(srv: ServeProcess, hostile: Promise<HttpResponse>): Promise<{ normal: HttpResponse | Error; r: HttpResponse | Error }> {
  // 10 s: far above a normal answer here, far below the 17-27 s stalls this guards against.
  const normal = await request(srv.url, `${S}/simple/pub/x/ok.rpm`, { timeoutMs: 10_000 }).catch((e: Error) => e);
  const r = await hostile.catch((e: Error) => e);
  return { normal, r };
}

const repeat = (s: string, n: number) => Array.from({ length: n }, () => s).join('');
const LONG = 'a'.repeat(300);

// [name, request path, headers, expected status, check of the answer]
type Row = [string, string, Record<string, string>, number, ((r: HttpResponse) => string | null)?];
const ROWS: Row[] = [
  ['six {a..z} braces', `${S}/simple/pub/${repeat('%7Ba..z%7D', 6)}`, {}, 404],
  ['twenty {a,b} braces', `${S}/simple/pub/${repeat('%7Ba,b%7D', 20)}`, {}, 404],
  ['{1..100000}', `${S}/simple/pub/{1..100000}`, {}, 404],
  ['*? x9 against 40-char names', `${S}/simple/pub/redos/${repeat('*%3F', 9)}Z`, {}, 404],
  ['*? x16 against 40-char names', `${S}/simple/pub/redos/${repeat('*%3F', 16)}Z`, {}, 404],
  ['*? x20: over the wildcard cap', `${S}/simple/pub/redos/${repeat('*%3F', 20)}Z`, {}, 400],
  ['five ** segments', `${S}/simple/pub/**/**/**/**/**/ok.rpm`, {}, 400],
  ['a glob that does match', `${S}/simple/pub/redos/${repeat('*%3F', 4)}.rpm`, {}, 200],
  ['segment over 255 bytes, simple', `${S}/simple/pub/${LONG}`, {}, 400],
  ['segment over 255 bytes, static', `/pub/${LONG}`, {}, 400],
  ['segment over 255 bytes, glob', `${S}/simple/pub/${LONG}*`, {}, 400],
  ['Range bytes=-0', '/pub/x/ok.rpm', { Range: 'bytes=-0' }, 416, (r) => (r.headers['content-range'] === 'bytes */5000' ? null : `Content-Range ${String(r.headers['content-range'])}`)],
  ['Range past the end', '/pub/x/ok.rpm', { Range: 'bytes=999999-' }, 416, (r) => (r.headers['content-range'] === 'bytes */5000' ? null : `Content-Range ${String(r.headers['content-range'])}`)],
  ['If-Match that fails', '/pub/x/ok.rpm', { 'If-Match': '"nope"' }, 412],
  ['If-Unmodified-Since in the past', '/pub/x/ok.rpm', { 'If-Unmodified-Since': 'Sat, 01 Jan 2000 00:00:00 GMT' }, 412],
  ['a valid Range still works', '/pub/x/ok.rpm', { Range: 'bytes=0-9' }, 206],
  ['cache entry by its path', '/tcache/info', {}, 403],
  ['cache through a symlink, static', '/pub/cachelink/info', {}, 403],
  ['cache through a symlink, simple', `${S}/simple/pub/cachelink/**`, {}, 403],
  ['cache through a symlink, literal', `${S}/simple/pub/cachelink/pieces/pub/x/ok.rpm/16384`, {}, 403],
  ['dot-directory, static', '/.git/config', {}, 403],
  ['dot-directory, simple', `${S}/simple/.git/config`, {}, 403],
  ['dot-file, simple', `${S}/simple/pub/x/.hidden.rpm`, {}, 403],
  ['dot-file, single', `${S}/single/pub/x/.hidden.rpm`, {}, 403],
  ['dot-file, glob skips it', `${S}/simple/pub/x/*hidden*`, {}, 404],
  ['empty file alone', `${S}/simple/pub/x/empty.rpm`, {}, 404, (r) => (/empty/.test(r.body.toString()) ? null : `reason: ${r.body.toString()}`)],
  ['only empty files', `${S}/simple/pub/empties/*`, {}, 404],
  ['a directory hints at its files', `${S}/simple/pub/x`, {}, 404, (r) => (r.body.toString().includes('/pub/x/*') ? null : `reason: ${r.body.toString()}`)],
];

// [name, p values, expected status]
const BODIES: Array<[string, string[], number]> = [
  ['cache through a symlink', [`/pub/cachelink/info/${digestOf(['/pub/x/ok.rpm'])}_s`], 403],
  ['dot-directory', ['/.git/config'], 403],
  ['dot-file among good ones', ['/pub/x/.hidden.rpm', '/pub/x/ok.rpm'], 403],
  ['segment over 255 bytes', [`/pub/${LONG}`], 400],
  ['only empty files', ['/pub/empties/a.rpm', '/pub/empties/b.rpm'], 404],
];

// Malformed HTTP on a raw socket: node answers 400 (or 431) and closes.
const RAW: Array<[string, string]> = [
  ['garbage request line', '\x00\x01\x02 nonsense\r\n\r\n'],
  ['bad Content-Length', `GET ${S}/simple/pub/x/ok.rpm HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n`],
  ['control character in a header', `GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01c\r\n\r\n`],
  ['headers over the limit', `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'b'.repeat(70_000)}\r\n\r\n`],
  ['absolute-form target', 'GET http://evil.example/pub/x/ok.rpm HTTP/1.1\r\nHost: evil.example\r\n\r\n'],
];

function rawExchange(url: string, text: string): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const sock = connect(Number(u.port), u.hostname);
    let got = '';
    sock.setEncoding('latin1');
    sock.on('data', (s: string) => (got += s));
    sock.on('error', () => resolve(got));
    sock.on('close', () => resolve(got));
    sock.setTimeout(5000, () => sock.destroy());
    sock.end(text);
  });
}

/** Every row of the tables against a running serve, asserting each answer; returns the HTTP answers. */
async function sendTable(t: Test, srv: ServeProcess): Promise<HttpResponse[]> {
  const all: HttpResponse[] = [];

  for (const [name, path, headers, status, check] of ROWS) {
    const { normal, r } = await alongside(srv, request(srv.url, path, { headers, timeoutMs: 20_000 }));
    if (r instanceof Error) {
      t.fail(`${name}: ${r.message}`);
      continue;
    }
    all.push(r);
    t.equal(r.status, status, `${name} -> ${r.body.toString().trim().slice(0, 120)}`);
    if (r.status >= 400) t.match(r.headers['content-type'], /^text\/plain/, `${name}: a short text reason`);
    const problem = check?.(r);
    if (check) t.equal(problem, null, `${name}: answer as expected`);
    t.ok(!(normal instanceof Error) && normal.status === 200, `${name}: a normal request answered meanwhile`);
  }
  for (const [name, paths, status] of BODIES) {
    const r = await postPaths(srv.url, 'pub', paths, digestOf(paths));
    all.push(r);
    t.equal(r.status, status, `POST ${name} -> ${r.body.toString().trim().slice(0, 120)}`);
  }
  for (const [name, text] of RAW) {
    const answer = await rawExchange(srv.url, text);
    t.match(answer, /^HTTP\/1\.1 4\d\d /, `${name}: a 4xx`);
    const after = await request(srv.url, `${S}/simple/pub/x/ok.rpm`, { timeoutMs: 10_000 });
    t.equal(after.status, 200, `${name}: serve still answers`);
  }
  const glob = await request(srv.url, `${S}/simple/pub/**`);
  t.equal(glob.status, 200, 'a glob over the whole tree answers');
  t.notOk(glob.body.includes('PKTPIECE') || glob.body.toString('latin1').includes('tcache'), 'and holds nothing of the cache');
  t.notOk(glob.body.toString('latin1').includes('.hidden'), 'and no hidden file');
  t.notOk(all.some((r) => r.status >= 500), 'no 5xx');
  t.notMatch(srv.stderr(), /internal error|\n\s+at /, 'no internal errors, no stack traces');
  return all;
}

t.test('hostile requests: status, liveness, memory, nothing outside opened', async (t) => {
  if (!need(t, 'inotifywait')) return;
  const events = await watchOpens(t, join(dir, 'outside'));
  const srv = await startServe(t, { root, cacheDir: cache, files: true });
  // Warm up, so the plateau includes a built torrent and the static path.
  for (let i = 0; i < 20; i++) {
    await request(srv.url, `${S}/simple/pub/x/ok.rpm`);
    await request(srv.url, '/pub/x/ok.rpm');
  }
  const plateau = rssBytes(srv.pid);
  await sendTable(t, srv);

  const grown = rssBytes(srv.pid) - plateau;
  t.ok(grown < 150 * 1024 * 1024, `memory back near its plateau (grew ${(grown / 1048576).toFixed(0)} MiB)`);
  // inotify events arrive asynchronously: give any pending one a moment before reading.
  await new Promise((r) => setTimeout(r, 200));
  t.equal(events(), '', 'nothing outside the root was opened or read');
});

t.test('the same table against serve run in-process (its code counts in coverage)', async (t) => {
  const srv = await startServe(t, { root, cacheDir: cache, files: true, inProcess: true });
  await sendTable(t, srv);
});

t.test('permission denied is 403 on every route (serve without root privileges)', async (t) => {
  const locked = join(dir, 'locked');
  mkdirSync(join(locked, 'pub/dir'), { recursive: true });
  writeFileSync(join(locked, 'pub/unreadable.rpm'), randomBytes(100));
  writeFileSync(join(locked, 'pub/ok.rpm'), randomBytes(100));
  writeFileSync(join(locked, 'pub/dir/inside.rpm'), randomBytes(100));
  chmodSync(join(locked, 'pub/unreadable.rpm'), 0o000);
  chmodSync(join(locked, 'pub/dir'), 0o000);
  t.teardown(() => chmodSync(join(locked, 'pub/dir'), 0o755));
  const lockedCache = join(dir, 'locked-cache');
  mkdirSync(lockedCache);
  const srv = await startServe(t, { root: locked, cacheDir: lockedCache, files: true, permissionsApply: true });
  const cases: Array<[string, () => Promise<HttpResponse>]> = [
    ['simple/ of an unreadable file', () => request(srv.url, `${S}/simple/pub/unreadable.rpm`)],
    ['simple/ through an unreadable directory', () => request(srv.url, `${S}/simple/pub/dir/inside.rpm`)],
    ['a glob matching an unreadable file', () => request(srv.url, `${S}/simple/pub/unr*`)],
    ['a glob walking an unreadable directory', () => request(srv.url, `${S}/simple/pub/dir/*`)],
    ['p= of an unreadable file', () => postPaths(srv.url, 'pub', ['/pub/ok.rpm', '/pub/unreadable.rpm'], digestOf(['/pub/ok.rpm', '/pub/unreadable.rpm']))],
    ['--files of an unreadable file', () => request(srv.url, '/pub/unreadable.rpm')],
    ['--files through an unreadable directory', () => request(srv.url, '/pub/dir/inside.rpm')],
  ];
  for (const [name, send] of cases) {
    const r = await send();
    t.equal(r.status, 403, `${name} -> ${r.body.toString().trim()}`);
  }
  t.equal((await request(srv.url, `${S}/simple/pub/ok.rpm`)).status, 200, 'a readable file still answers');
  t.notMatch(srv.stderr(), /internal error|\n\s+at /, 'no internal errors, no stack traces');
});
