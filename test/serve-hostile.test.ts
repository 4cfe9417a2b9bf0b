// A table of hostile paths and bodies. Each gets its status; afterwards the
// secret outside the root has not been opened nor its directory listed
// (inotifywait saw nothing there), its bytes appear in no answer, and
// nothing outside the root was hashed into the cache.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { need } from './helpers/oracles.js';
import { watchOpens } from './helpers/watch-opens.js';
import { digestOf, postPaths, request, startServe, type HttpResponse } from './helpers/server.js';

const SECRET = randomBytes(4096);

const dir = t.testdir({
  root: { pub: { x: { 'ok.rpm': randomBytes(5000), 'ok2.rpm': randomBytes(10), 'ok3.rpm': randomBytes(10) } } },
  outside: { 'secret.rpm': SECRET },
  cache: {},
});
const root = join(dir, 'root');
symlinkSync('../../../outside/secret.rpm', join(root, 'pub/x/evil.rpm'));
symlinkSync('../../../outside', join(root, 'pub/x/evildir'));
symlinkSync('/etc', join(root, 'pub/etc'));
mkdirSync(join(root, 'pub/x/sub'));

const S = '/pub/torrent_service';
// [name, raw request path, expected status]
const PATHS: Array<[string, string, number]> = [
  ['dot-dot', `${S}/simple/../outside/secret.rpm`, 403],
  ['encoded dot-dot', `${S}/simple/%2e%2e/outside/secret.rpm`, 403],
  ['encoded slashes', `${S}/simple/pub/x/..%2F..%2F..%2Foutside%2Fsecret.rpm`, 403],
  ['double-encoded', `${S}/simple/pub/x/%252e%252e/secret.rpm`, 404],
  ['symlink to a file outside', `${S}/simple/pub/x/evil.rpm`, 403],
  ['through a symlinked dir', `${S}/simple/pub/x/evildir/secret.rpm`, 403],
  ['glob in a symlinked dir', `${S}/simple/pub/x/evildir/*`, 403],
  ['glob through symlinked dirs', `${S}/simple/pub/x/*/secret.rpm`, 404],
  ['glob of everything skips symlinks out', `${S}/simple/pub/**/secret*`, 404],
  ['absolute symlink', `${S}/simple/pub/etc/passwd`, 403],
  ['NUL', `${S}/simple/pub/x/ok.rpm%00.txt`, 403],
  ['backslash', `${S}/simple/pub/x/..%5C..%5Csecret.rpm`, 403],
  ['empty segment', `${S}/simple/pub//x/ok.rpm`, 400],
  ['brace expansion is off', `${S}/simple/pub/x/%7B..,x%7D/*`, 404],
  ['bracket dots', `${S}/simple/pub/x/[.][.]/*`, 404],
  ['malformed percent', `${S}/simple/pub/x/%zz`, 400],
  ['simple with no path', `${S}/simple/`, 400],
  ['unknown mode', `${S}/admin/x`, 404],
  ['glob over the cap', `${S}/simple/pub/x/ok*`, 413],
  ['static dot-dot', '/../outside/secret.rpm', 403],
  ['static encoded dot-dot', '/%2e%2e/outside/secret.rpm', 403],
  ['static symlink out', '/pub/x/evil.rpm', 403],
  ['static through symlinked dir', '/pub/x/evildir/secret.rpm', 403],
  ['static directory', '/pub/x/sub', 404],
  ['static NUL', '/pub/x/ok.rpm%00', 403],
];

// [name, p values, expected status]; the digest is computed over the values, so only the paths are wrong.
const BODIES: Array<[string, string[], number]> = [
  ['dot-dot', ['/pub/../outside/secret.rpm'], 403],
  ['encoded dot-dot', ['/pub/x/%2e%2e/%2e%2e/%2e%2e/outside/secret.rpm'], 403],
  ['symlink out', ['/pub/x/evil.rpm'], 403],
  ['through symlinked dir', ['/pub/x/evildir/secret.rpm'], 403],
  ['NUL', ['/pub/x/ok.rpm%00'], 403],
  ['malformed percent', ['/pub/x/%E0%A4%A'], 400],
  ['a directory', ['/pub/x/sub'], 404],
  ['too many paths', ['/pub/x/ok.rpm', '/pub/x/ok2.rpm', '/pub/x/ok3.rpm', '/pub/x/evil.rpm'], 413],
  ['mixed: good then outside', ['/pub/x/ok.rpm', '/pub/x/evil.rpm'], 403],
];

t.test('hostile requests', async (t) => {
  if (!need(t, 'inotifywait')) return;
  const opened = await watchOpens(t, join(dir, 'outside'));
  const srv = await startServe(t, {
    root,
    cacheDir: join(dir, 'cache'),
    files: true,
    inProcess: true,
    args: ['--max-paths', '3', '--max-body', '2K', '--max-glob-matches', '2'],
  });
  const answers: HttpResponse[] = [];
  for (const [name, path, status] of PATHS) {
    const r = await request(srv.url, path);
    answers.push(r);
    t.equal(r.status, status, `${name}: ${path} -> ${r.body.toString().trim()}`);
    t.match(r.headers['content-type'], /^text\/plain/, `${name}: short text reason`);
  }
  for (const [name, paths, status] of BODIES) {
    const r = await postPaths(srv.url, 'pub', paths, digestOf(paths));
    answers.push(r);
    t.equal(r.status, status, `${name}: ${r.body.toString().trim()}`);
  }
  const digest = `${S}/digest/${digestOf(['/pub/x/ok.rpm'])}`;
  const raw: Array<[string, string | Buffer, number, Record<string, string>?]> = [
    ['body over --max-body', 'p=' + 'a'.repeat(3000), 413],
    ['malformed form', 'p=%zz', 400],
    ['field without =', 'p', 400],
    ['raw bytes', Buffer.from([0x70, 0x3d, 0xff, 0xfe]), 400],
    ['wrong content type', 'p=/pub/x/ok.rpm', 400, { 'Content-Type': 'multipart/form-data; boundary=x' }],
    ['declared length over the cap', 'p=x', 413, { 'Content-Length': '999999999' }],
  ];
  for (const [name, body, status, headers] of raw) {
    const r = await request(srv.url, digest, { method: 'POST', body, headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers } }).catch(
      (e: Error) => ({ status: -1, headers: {}, body: Buffer.from(e.message) }),
    );
    // A server may close the connection on an oversized body before the client finishes sending.
    if (status === 413 && r.status === -1) t.pass(`${name}: connection closed`);
    else t.equal(r.status, status, `${name}: ${r.body.toString().trim()}`);
    answers.push(r);
  }
  for (const host of ['evil host', 'a/b', 'x"y', '[::1', `${'a'.repeat(300)}.example`]) {
    const r = await request(srv.url, '/pub/torrent_service/simple/pub/x/ok.rpm', { headers: { Host: host } });
    t.equal(r.status, 400, `Host '${host.slice(0, 20)}'`);
  }
  const proxied = await request(srv.url, '/pub/torrent_service/simple/pub/x/ok.rpm', { headers: { 'X-Forwarded-Host': 'evil.example' } });
  t.equal(proxied.status, 200, 'a torrent was answered');
  t.notOk(proxied.body.includes('evil.example'), 'X-Forwarded-Host ignored without --trust-proxy');

  // inotify events arrive asynchronously: give any pending one a moment before reading.
  await new Promise((r) => setTimeout(r, 200));
  t.equal(opened(), '', 'nothing outside the root was opened, read or listed');
  t.notOk(answers.some((r) => r.body.includes(SECRET.subarray(0, 64))), 'no answer holds the secret');
  const cached = readdirSync(join(dir, 'cache'), { recursive: true }).map(String);
  t.notOk(cached.some((p) => p.includes('secret') || p.includes('..')), `nothing outside was hashed: ${cached.join(' ')}`);
  t.notMatch(srv.stderr(), /internal error|\n\s+at /, 'no 500s, no stack traces');
  t.notOk(answers.some((r) => r.status >= 500), 'no 5xx');
});

t.test('--trust-proxy takes the host and scheme from X-Forwarded-*', async (t) => {
  const srv = await startServe(t, { root, cacheDir: join(dir, 'cache'), args: ['--trust-proxy'], inProcess: true });
  const r = await request(srv.url, '/pub/torrent_service/simple/pub/x/ok.rpm', {
    headers: { 'X-Forwarded-Host': 'mirror.example', 'X-Forwarded-Proto': 'https' },
  });
  t.equal(r.status, 200);
  t.ok(r.body.includes('https://mirror.example/pub/x/'), 'web seed from the proxy headers');
  const bad = await request(srv.url, '/pub/torrent_service/simple/pub/x/ok.rpm', { headers: { 'X-Forwarded-Host': 'bad host' } });
  t.equal(bad.status, 400);
});
