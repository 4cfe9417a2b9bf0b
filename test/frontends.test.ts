// Apache and nginx in front of a real `pkgtorrent serve`, each configured with
// exactly the lines README.md and pkgtorrent-service(8) give an operator
// (checked below), the way a mirror runs in production: the web server
// serves the files, and proxies /<prefix>/torrent_service/ to serve on
// 127.0.0.1. Each front end runs in the foreground as a child of this test,
// from a config, pid file and logs in a private temporary directory, on a
// free 127.0.0.1 port; nothing under /etc is read or written.
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { accessSync, chmodSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decodeTorrent } from './helpers/bencode.js';
import { until } from './helpers/poll.js';
import { digestOf, postPaths, request, startServe } from './helpers/server.js';

/** Apache (mod_proxy, mod_proxy_http), in the virtual host that serves the mirror. */
const APACHE_SNIPPET = [
  'ProxyPreserveHost On',
  'AllowEncodedSlashes NoDecode',
  'ProxyTimeout 130',
  'ProxyPassMatch "^/([^/]+)/torrent(_|%5[Ff])service/(.*)$" "http://127.0.0.1:8080/$1/torrent_service/$3" nocanon',
  'SetEnvIf Request_URI "/torrent(_|%5[Ff])service/nullfile/1(_|%5[Ff])[0-9]+$" nokeepalive',
];

/** nginx, in the server block that serves the mirror. */
const NGINX_SNIPPET = [
  'location ~ ^/[^/]+/torrent_service/nullfile/1_[0-9]+$ {',
  '    keepalive_timeout 0;',
  '    proxy_pass http://127.0.0.1:8080;',
  '    proxy_set_header Host $http_host;',
  '}',
  'location ~ ^/[^/]+/torrent_service/ {',
  '    proxy_pass http://127.0.0.1:8080;',
  '    proxy_set_header Host $http_host;',
  '    proxy_set_header X-Forwarded-Host $http_host;',
  '    proxy_set_header X-Forwarded-Proto $scheme;',
  '    client_max_body_size 1m;',
  '    proxy_read_timeout 130s;',
  '}',
];

const REPO = fileURLToPath(new URL('..', import.meta.url));
/** How a line looks inside a man page's .EX block: '\' and '-' escaped. */
const roff = (line: string) => line.replace(/\\/g, '\\e').replace(/-/g, '\\-');

t.test('README and pkgtorrent-service(8) give exactly the tested front-end lines', async (t) => {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const man = readFileSync(join(REPO, 'man/pkgtorrent-service.8'), 'utf8');
  for (const [name, lines] of [
    ['Apache', APACHE_SNIPPET],
    ['nginx', NGINX_SNIPPET],
  ] as const) {
    t.ok(readme.includes(lines.join('\n')), `README.md has the ${name} lines`);
    t.ok(man.includes(lines.map(roff).join('\n')), `pkgtorrent-service.8 has the ${name} lines`);
  }
});

// ---- the mirror and its back end ---------------------------------------------

const FILES: Record<string, Buffer> = {
  'pub/x/a+1.rpm': randomBytes(70_000),
  'pub/x/b.rpm': randomBytes(20_000),
};

/**
 * A private directory that the front ends' unprivileged workers can read:
 * as root, Apache and nginx drop to nobody, and a test directory under a
 * checkout in /root would be closed to them.
 */
function worldReadableDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'pkgtorrent-frontends-'));
  chmodSync(dir, 0o755);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function writeMirror(root: string): void {
  for (const [rel, bytes] of Object.entries(FILES)) {
    const path = join(root, rel);
    mkdirSync(join(path, '..'), { recursive: true, mode: 0o755 });
    writeFileSync(path, bytes, { mode: 0o644 });
  }
}

// ---- the front ends ----------------------------------------------------------

/** An executable on PATH or in the sbin directories, where Debian puts both servers. */
function findBinary(name: string): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/local/sbin', '/sbin']) {
    if (!dir) continue;
    try {
      accessSync(join(dir, name), constants.X_OK);
      return join(dir, name);
    } catch {
      // not here
    }
  }
  return null;
}

/** The binary, or a loud skip (a failure when CI is set), as helpers/oracles.ts does for the other tools. */
function needBinary(t: Test, name: string, pkg: string): string | null {
  const found = findBinary(name);
  if (found) return found;
  const msg = `${name} is not installed: apt-get install -y ${pkg}`;
  if (process.env.CI) t.fail(`${msg} (required when CI is set)`);
  else {
    process.stderr.write(`# SKIP ${msg}\n`);
    t.pass(msg, { skip: msg });
  }
  return null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(port, '127.0.0.1');
    c.on('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.on('error', () => resolve(false));
  });
}

interface FrontEnd {
  url: string;
  /** The front end's error log so far. */
  errorLog(): string;
}

/**
 * Starts a server in the foreground in its own process group (so its workers
 * go with it), waits until its port accepts connections, and stops the whole
 * group in teardown.
 */
async function startFrontEnd(t: Test, cmd: string, args: string[], port: number, errorLogPath: string): Promise<FrontEnd> {
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout!.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  const errorLog = () => (existsSync(errorLogPath) ? readFileSync(errorLogPath, 'utf8') : '');
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    process.kill(-child.pid!, 'SIGTERM');
    const killer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 10_000);
    await exited;
    clearTimeout(killer);
  });
  const up = await until(15_000, async () => child.exitCode !== null || (await accepts(port)), 100);
  if (!up || child.exitCode !== null) throw new Error(`${cmd} did not start (exit ${child.exitCode}):\n${output}\n${errorLog()}`);
  return { url: `http://127.0.0.1:${port}`, errorLog };
}

const asRoot = process.getuid?.() === 0;

function apacheConfig(dir: string, root: string, port: number, backend: string): string {
  const mod = (name: string, file: string) => `LoadModule ${name}_module /usr/lib/apache2/modules/mod_${file}.so`;
  return [
    `ServerRoot "${dir}"`,
    'ServerName 127.0.0.1',
    `Listen 127.0.0.1:${port}`,
    `PidFile "${dir}/httpd.pid"`,
    `ErrorLog "${dir}/error.log"`,
    'LogLevel warn',
    `DefaultRuntimeDir "${dir}"`,
    `Mutex file:${dir} default`,
    ...(asRoot ? ['User nobody', 'Group nogroup'] : []),
    mod('mpm_event', 'mpm_event'),
    mod('authz_core', 'authz_core'),
    mod('proxy', 'proxy'),
    mod('proxy_http', 'proxy_http'),
    mod('setenvif', 'setenvif'),
    `DocumentRoot "${root}"`,
    `<Directory "${root}">`,
    '    Require all granted',
    '</Directory>',
    ...APACHE_SNIPPET.map((l) => l.replace('127.0.0.1:8080', backend)),
    '',
  ].join('\n');
}

function nginxConfig(dir: string, root: string, port: number, backend: string): string {
  return [
    'daemon off;',
    'worker_processes 1;',
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log warn;`,
    ...(asRoot ? ['user nobody nogroup;'] : []),
    'events { worker_connections 64; }',
    'http {',
    `    access_log ${dir}/access.log;`,
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `    ${k}_temp_path ${dir}/${k};`),
    '    server {',
    `        listen 127.0.0.1:${port};`,
    `        root ${root};`,
    ...NGINX_SNIPPET.map((l) => `        ${l.replace('127.0.0.1:8080', backend)}`),
    '    }',
    '}',
    '',
  ].join('\n');
}

type Starter = (t: Test, dir: string, root: string, backend: string) => Promise<FrontEnd>;

const FRONT_ENDS: Array<{ name: string; binary: string; pkg: string; start: Starter }> = [
  {
    name: 'Apache',
    binary: 'apache2',
    pkg: 'apache2-bin',
    start: async (t, dir, root, backend) => {
      const port = await freePort();
      writeFileSync(join(dir, 'httpd.conf'), apacheConfig(dir, root, port, backend));
      return startFrontEnd(t, findBinary('apache2')!, ['-f', join(dir, 'httpd.conf'), '-D', 'FOREGROUND'], port, join(dir, 'error.log'));
    },
  },
  {
    name: 'nginx',
    binary: 'nginx',
    pkg: 'nginx',
    start: async (t, dir, root, backend) => {
      const port = await freePort();
      writeFileSync(join(dir, 'nginx.conf'), nginxConfig(dir, root, port, backend));
      // -e: the log for errors before the config is read (else /var/log/nginx).
      return startFrontEnd(t, findBinary('nginx')!, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], port, join(dir, 'error.log'));
    },
  },
];

for (const fe of FRONT_ENDS) {
  t.test(`behind ${fe.name}`, async (t) => {
    if (!needBinary(t, fe.binary, fe.pkg)) return;
    const dir = worldReadableDir(t);
    const root = join(dir, 'root');
    writeMirror(root);
    mkdirSync(join(dir, 'cache'));
    mkdirSync(join(dir, 'fe'), { mode: 0o755 });
    // No --files: every file a web seed fetches must come from the front end itself.
    const srv = await startServe(t, { root, cacheDir: join(dir, 'cache'), pieceLength: '16K' });
    const front = await fe.start(t, join(dir, 'fe'), root, srv.url.replace(/^http:\/\//, ''));
    const base = front.url;

    // The yum-torrent conversation: 412 (uncacheable), POST, 200; then a GET hit.
    const paths = ['/pub/x/a%2B1.rpm', '/pub/x/b.rpm'];
    const digest = digestOf(paths);
    const first = await request(base, `/pub/torrent_service/digest/${digest}`);
    t.equal(first.status, 412, 'digest GET before the POST');
    t.equal(first.headers['cache-control'], 'no-cache, no-store, must-revalidate', 'the no-cache headers come through');
    const posted = await postPaths(base, 'pub', paths, digest);
    t.equal(posted.status, 200, `POST: ${posted.status === 200 ? '' : posted.body.toString()}`);
    t.equal(posted.headers['content-type'], 'application/x-bittorrent');
    const tor = decodeTorrent(posted.body);
    t.match(posted.headers['content-disposition'], /^attachment; filename=[0-9a-f]{40}\.torrent$/);
    t.same(tor['url-list'], [`${base}/`], "the web seed is the front end's host and port");
    t.same(
      tor.info.files.filter((f: { attr?: string }) => f.attr !== 'p').map((f: { path: string[] }) => f.path.join('/')),
      ['x/a+1.rpm', 'x/b.rpm'],
    );
    const hit = await request(base, `/pub/torrent_service/digest/${digest}`);
    t.equal(hit.status, 200, 'digest GET after the POST');
    t.same(hit.body, posted.body, 'the same torrent');

    // Simple mode with a glob, and every file of it through its web seed.
    const glob = await request(base, '/yum/torrent_service/simple/pub/x/*.rpm');
    t.equal(glob.status, 200, 'simple/ with a glob');
    const multi = decodeTorrent(glob.body);
    t.same(multi['url-list'], [`${base}/`]);
    for (const f of multi.info.files as Array<{ path: string[]; length: number; attr?: string }>) {
      const url = `${multi['url-list'][0]}${[multi.info.name, ...f.path].map(encodeURIComponent).join('/')}`;
      const r = await request(base, new URL(url).pathname);
      t.equal(r.status, 200, `web seed GET ${new URL(url).pathname}`);
      const want = f.attr === 'p' ? Buffer.alloc(f.length) : FILES[`pub/${f.path.join('/')}`];
      t.ok(r.body.equals(want!), `${f.path.join('/')}: the bytes of the mirror`);
    }

    // A null file, as Transmission asks for it (encoded), with a Range.
    const range = await request(base, '/pub/torrent%5Fservice/nullfile/1000_0', { headers: { Range: 'bytes=10-19' } });
    t.equal(range.status, 206, 'nullfile Range');
    t.equal(range.headers['content-range'], 'bytes 10-19/1000');
    t.same(range.body, Buffer.alloc(10));

    // One-byte pads end the client connection at the front end too (aria2
    // would wait out the idle timeout); a two-byte one keeps it alive.
    for (const path of ['/pub/torrent_service/nullfile/1_0', '/pub/torrent%5Fservice/nullfile/1%5F3']) {
      const one = await request(base, path, { headers: { Connection: 'keep-alive' } });
      t.equal(one.status, 200, `${path}: answered`);
      t.equal(one.headers.connection, 'close', `${path}: the front end closes after byte 0`);
    }
    const two = await request(base, '/pub/torrent_service/nullfile/2_0', { headers: { Connection: 'keep-alive' } });
    t.not(two.headers.connection, 'close', 'a two-byte pad keeps the connection');

    // Encoded paths: the service name and a package name with '+'.
    const enc = await request(base, '/pub/torrent%5Fservice/simple/pub/x/a%2B1.rpm');
    t.equal(enc.status, 200, 'torrent%5Fservice and %2B');
    const single = decodeTorrent(enc.body);
    t.equal(single.info.name, 'a+1.rpm');
    t.equal(single.info.length, FILES['pub/x/a+1.rpm']!.length);
    t.same(single['url-list'], [`${base}/pub/x/`]);
    // The access log line comes a moment after the answer.
    const logged = /GET \/pub\/torrent(_|%5F)service\/simple\/pub\/x\/a%2B1\.rpm 200 /;
    t.ok(await srv.waitFor(logged, 5000).then(() => true, () => false), 'the back end got the path still encoded', { log: srv.stderr() });

    // The Host as the client sent it, underscores and all.
    const port = new URL(base).port;
    const named = await request(base, '/pub/torrent_service/simple/pub/x/b.rpm', { headers: { Host: `yum_mirror:${port}` } });
    t.equal(named.status, 200, 'Host with an underscore');
    t.same(decodeTorrent(named.body)['url-list'], [`http://yum_mirror:${port}/pub/x/`]);

    // Encoded dots never reach a file outside.
    const dots = await request(base, '/pub/torrent_service/simple/pub/%2e%2e/x/b.rpm');
    t.ok([400, 403, 404].includes(dots.status), `encoded '..' refused (${dots.status})`);

    // Apache drops nocanon, and logs that it did, when the raw path does not
    // match the pattern: the pattern takes torrent%5Fservice as it is.
    t.notMatch(front.errorLog(), /AH01136|\[proxy:error\]|\[error\]/, `${fe.name}'s error log is clean`);
    t.notMatch(srv.stderr(), /internal error|\n\s+at /, 'no 500s in serve');
  });
}
