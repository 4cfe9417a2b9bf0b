// aria2 and one-byte padding. aria2 sends no Range for a one-byte file and
// reads a response that ends at byte 0 as open-ended: after such a pad it
// waits on the kept-alive connection for the next piece. The service must end
// that wait itself (Connection: close) rather than leave it to an idle timeout.
//
// The real aria2c downloads a multi-file torrent with several one-byte and
// other small pads from `serve --files`, through a recording proxy that never
// passes an unannounced server close on to aria2: it behaves like a front
// server whose idle timeout is long (nginx: 75 s), so a client that relies on
// an idle close never completes, whatever the machine's speed. Every byte on
// disk is compared with the mirror, and the proxy's record shows what aria2
// was answered on each connection. The same holds for a one-byte file served
// by --files that ends a piece (a torrent without padding).
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { need } from './helpers/oracles.js';
import { decodeTorrent } from './helpers/bencode.js';
import { startServe, request } from './helpers/server.js';
import { bin } from './helpers/cli.js';
import { aria2Download, scratch } from './helpers/clients.js';

const PL = 16384;
const SVC = 'torrent_service';

// Sizes chosen for their padding: four one-byte pads (a file one byte short
// of a piece boundary), a real one-byte file (pad PL-1), pads of 2 and 100
// bytes, and a last file that gets none.
const FILES: Record<string, number> = {
  'a.bin': PL - 1,
  'b.bin': 2 * PL - 1,
  'c.bin': 1,
  'd.bin': 3 * PL - 1,
  'e.bin': PL - 2,
  'f.bin': 2 * PL - 100,
  'g.bin': PL - 1,
  'h.bin': 5000,
};

interface Exchange {
  method: string;
  path: string;
  status?: number;
  headers?: Record<string, string>;
}

interface Connection {
  exchanges: Exchange[];
  /** The server ended the connection (a FIN from upstream). */
  serverClosed: boolean;
  /** ... and its last response had not announced it: an idle close, kept from the client. */
  hidden: boolean;
}

/** Splits an HTTP/1.1 message head into its first line and lower-cased headers. */
function parseHead(head: string): { line: string; headers: Record<string, string> } {
  const [line, ...rest] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const h of rest) {
    const i = h.indexOf(':');
    if (i > 0) headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
  }
  return { line: line!, headers };
}

/**
 * A TCP proxy on 127.0.0.1 in front of `target` that records every request
 * and response head per connection. Bodies are skipped by Content-Length (the
 * service always sends one; aria2's GETs have none). A server close after a
 * response marked `Connection: close` is passed on; any other server close is
 * kept from the client, whose side stays open until it sends again (then it
 * is reset, as a dead kept-alive connection would be) or goes away.
 */
async function recordingProxy(t: Test, target: URL): Promise<{ url: string; connections: Connection[] }> {
  const connections: Connection[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const conn: Connection = { exchanges: [], serverClosed: false, hidden: false };
    connections.push(conn);
    const upstream = connect(Number(target.port), target.hostname);
    sockets.add(client).add(upstream);
    client.on('close', () => sockets.delete(client));
    upstream.on('close', () => sockets.delete(upstream));

    let reqBuf = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      if (conn.serverClosed) {
        client.destroy();
        return;
      }
      upstream.write(chunk);
      reqBuf = Buffer.concat([reqBuf, chunk]);
      for (let end; (end = reqBuf.indexOf('\r\n\r\n')) >= 0; ) {
        const { line } = parseHead(reqBuf.subarray(0, end).toString('latin1'));
        const [method, path] = line.split(' ');
        conn.exchanges.push({ method: method!, path: path! });
        reqBuf = reqBuf.subarray(end + 4);
      }
    });

    let resBuf = Buffer.alloc(0);
    let bodyLeft = 0;
    let answered = 0;
    upstream.on('data', (chunk: Buffer) => {
      client.write(chunk);
      resBuf = Buffer.concat([resBuf, chunk]);
      for (;;) {
        if (bodyLeft > 0) {
          const n = Math.min(bodyLeft, resBuf.length);
          bodyLeft -= n;
          resBuf = resBuf.subarray(n);
          if (bodyLeft > 0) return;
        }
        const end = resBuf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const { line, headers } = parseHead(resBuf.subarray(0, end).toString('latin1'));
        resBuf = resBuf.subarray(end + 4);
        const ex = conn.exchanges[answered++];
        if (ex) Object.assign(ex, { status: Number(line.split(' ')[1]), headers });
        const noBody = ex?.method === 'HEAD' || ex?.status === 304;
        bodyLeft = noBody ? 0 : Number(headers['content-length'] ?? 0);
      }
    });
    upstream.on('end', () => {
      conn.serverClosed = true;
      const last = conn.exchanges[answered - 1];
      if (last?.headers?.connection?.toLowerCase() === 'close') client.end();
      else conn.hidden = true;
    });
    client.on('end', () => upstream.end());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, connections };
}

/** A torrent entry, with its path on disk under the download dir and in the mirror. */
interface Entry {
  path: string[];
  length: number;
  pad: boolean;
}

/**
 * Downloads `torrent` with aria2c through `proxy` and checks every byte on
 * disk against `mirrorOf` (pads: zeros). Returns the connections aria2 made.
 */
async function downloadThroughProxy(
  t: Test,
  proxy: { connections: Connection[] },
  torrent: string,
  dl: string,
  mirrorOf: (e: Entry) => string,
): Promise<{ conns: Connection[]; entries: Entry[] }> {
  const meta = decodeTorrent(readFileSync(torrent));
  const entries: Entry[] = meta.info.files.map((f: { path: string[]; length: number; attr?: string }) => ({
    path: [meta.info.name, ...f.path],
    length: f.length,
    pad: f.attr === 'p',
  }));
  const before = proxy.connections.length;
  const r = await aria2Download(t, torrent, dl, { timeoutMs: 30_000 });
  t.ok(r.ok, 'aria2c completes (it would wait forever on an idle connection here)', { diagnostic: !r.ok, detail: r.detail });
  for (const e of entries) {
    const what = e.path.join('/');
    const onDisk = join(dl, ...e.path);
    if (!existsSync(onDisk)) {
      t.fail(`${what}: not on disk`);
      continue;
    }
    const b = readFileSync(onDisk);
    if (e.pad) t.ok(b.length === e.length && b.every((x) => x === 0), `${what}: ${e.length} zero bytes`);
    else t.ok(b.length === e.length && b.equals(readFileSync(mirrorOf(e))), `${what}: equals the mirror`);
  }
  return { conns: proxy.connections.slice(before), entries };
}

/** Every exchange of these connections, with whether it was the last on its connection. */
const exchangesOf = (conns: Connection[]) => conns.flatMap((c) => c.exchanges.map((e, i) => ({ e, c, last: i === c.exchanges.length - 1 })));

/** What a one-byte file (aria2 asks without Range) must have been answered, and what became of its connection. */
function checkOneByte(t: Test, { e, c, last }: ReturnType<typeof exchangesOf>[number]): void {
  const what = `${e.path} (${e.headers?.['content-range'] ?? 'no range'})`;
  t.equal(e.status, 200, `${what}: 200`);
  t.equal(e.headers?.['content-length'], '1', `${what}: one byte`);
  t.equal(e.headers?.connection?.toLowerCase(), 'close', `${what}: Connection: close`);
  t.ok(last && c.serverClosed && !c.hidden, `${what}: the last exchange on its connection, which the server ended with it`);
}

t.test('aria2 downloads a torrent with one-byte pads through the web seed without waiting for an idle close', async (t) => {
  if (!need(t, 'aria2c')) return;
  const dir = scratch(t, 'aria2pad');
  const root = join(dir, 'root');
  mkdirSync(join(root, 'pub/pads'), { recursive: true });
  mkdirSync(join(dir, 'cache'));
  for (const [name, size] of Object.entries(FILES)) writeFileSync(join(root, 'pub/pads', name), randomBytes(size));

  const server = await startServe(t, { root, cacheDir: join(dir, 'cache'), files: true, pieceLength: '16K' });
  const proxy = await recordingProxy(t, new URL(server.url));
  // Asked through the proxy, so the web seed (from Host) is the proxy too.
  const got = await request(proxy.url, `/pub/${SVC}/simple/pub/pads/*.bin`);
  t.equal(got.status, 200, 'glob torrent built');
  if (got.status !== 200) return;
  const torrent = join(dir, 'pads.torrent');
  writeFileSync(torrent, got.body);
  t.same(decodeTorrent(got.body)['url-list'], [`${proxy.url}/`], 'the web seed is the proxy');

  const { conns, entries } = await downloadThroughProxy(t, proxy, torrent, join(dir, 'dl'), (e) => join(root, ...e.path));
  const pads = entries.filter((e) => e.pad);
  t.equal(pads.filter((e) => e.length === 1).length, 4, 'the torrent has four one-byte pads');
  t.same(
    pads.filter((e) => e.length > 1).map((e) => e.length).sort((a, b) => a - b),
    [2, 100, PL - 1],
    'and pads of 2, 100 and PL-1 bytes',
  );

  const nullSize = (path: string) => /\/nullfile\/(\d+)_\d+$/.exec(decodeURIComponent(path))?.[1];
  const padExchanges = exchangesOf(conns).filter((x) => nullSize(x.e.path));
  t.same(
    [...new Set(padExchanges.map((x) => decodeURIComponent(x.e.path).replace(/^.*\/nullfile\//, '')))].sort(),
    pads.map((e) => e.path.at(-1)).sort(),
    'aria2 fetched every pad from the nullfile route',
  );
  for (const x of padExchanges) {
    if (nullSize(x.e.path) === '1') checkOneByte(t, x);
    else {
      const what = `${x.e.path} (${x.e.headers?.['content-range'] ?? 'no range'})`;
      t.equal(x.e.status, 206, `${what}: 206 to aria2's Range`);
      t.not(x.e.headers?.connection?.toLowerCase(), 'close', `${what}: the connection stays open for the next request`);
    }
  }
  // The stall, as the proxy sees it: a connection that carried a one-byte
  // pad closed by the server without saying so while aria2 still held it.
  // (An idle pooled connection may be closed so; aria2 never waits on one.)
  t.same(
    conns.filter((c) => c.hidden && c.exchanges.some((e) => nullSize(e.path) === '1')).map((c) => c.exchanges.map((e) => e.path)),
    [],
    'no connection that carried a one-byte pad was left to an idle close',
  );
  const aborted = server
    .stderr()
    .split('\n')
    .filter((l) => l.includes('/nullfile/') && / \d{3}! /.test(l));
  t.same(aborted, [], 'no nullfile response was cut off (access log)');
});

t.test('aria2 downloads a mktorrent-layout torrent whose pieces end in one-byte files (serve --files)', async (t) => {
  if (!need(t, 'aria2c')) return;
  const dir = scratch(t, 'aria2pad-make');
  const root = join(dir, 'root');
  mkdirSync(join(root, 'm'), { recursive: true });
  // Unpadded, by path: pieces [a b] [c d] [e]; b and d are each the last byte of a piece.
  const sizes: Record<string, number> = { 'a.bin': PL - 1, 'b.bin': 1, 'c.bin': PL - 1, 'd.bin': 1, 'e.bin': 5000 };
  for (const [name, size] of Object.entries(sizes)) writeFileSync(join(root, 'm', name), randomBytes(size));
  const server = await startServe(t, { root, cacheDir: join(dir, 'cache'), files: true, pieceLength: '16K' });
  const proxy = await recordingProxy(t, new URL(server.url));
  const torrent = join(dir, 'm.torrent');
  const made = await bin(['make', '-l', '16K', '-w', `${proxy.url}/`, '-o', torrent, join(root, 'm')], { timeoutMs: 30_000 });
  t.equal(made.code, 0, 'make exits 0', { diagnostic: made.code !== 0, stderr: made.stderr });
  if (made.code !== 0) return;

  const { conns, entries } = await downloadThroughProxy(t, proxy, torrent, join(dir, 'dl'), (e) => join(root, ...e.path));
  t.same(
    entries.map((e) => e.length),
    Object.values(sizes),
    'no padding: the files as they are',
  );
  const oneByte = exchangesOf(conns).filter((x) => /\/m\/[bd]\.bin$/.test(x.e.path));
  t.same([...new Set(oneByte.map((x) => x.e.path))].sort(), ['/m/b.bin', '/m/d.bin'], 'aria2 fetched both one-byte files');
  for (const x of oneByte) checkOneByte(t, x);
});

t.test('which responses close the connection: exactly those whose body is byte 0', async (t) => {
  const dir = scratch(t, 'aria2pad-raw');
  mkdirSync(join(dir, 'root/pub'), { recursive: true });
  const content: Record<string, Buffer> = { '/pub/one.bin': randomBytes(1), '/pub/two.bin': randomBytes(2), '/pub/five.bin': randomBytes(5) };
  for (const [p, b] of Object.entries(content)) writeFileSync(join(dir, 'root', p), b);
  const server = await startServe(t, { root: join(dir, 'root'), cacheDir: join(dir, 'cache'), files: true });
  const { port } = new URL(server.url);

  /**
   * Sends one request on a fresh connection (HTTP/1.1, no Connection
   * header: keep-alive is the default) and reads one response. Then sends a
   * second request on the same connection: answered when the server kept it
   * open, or the connection ends first when the server closed it.
   */
  const exchange = (method: string, path: string, headers: Record<string, string> = {}) =>
    new Promise<{ head: ReturnType<typeof parseHead>; body: Buffer; secondAnswered: boolean }>((resolve, reject) => {
      const s = connect(Number(port), '127.0.0.1');
      t.teardown(() => s.destroy());
      const msg = (m: string) => `${m} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
      let buf = Buffer.alloc(0);
      let first: { head: ReturnType<typeof parseHead>; body: Buffer } | null = null;
      s.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        if (first) {
          if (buf.includes('\r\n\r\n')) {
            resolve({ ...first, secondAnswered: true });
            s.destroy();
          }
          return;
        }
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = parseHead(buf.subarray(0, end).toString('latin1'));
        const len = method === 'HEAD' ? 0 : Number(head.headers['content-length']);
        if (buf.length < end + 4 + len) return;
        first = { head, body: buf.subarray(end + 4, end + 4 + len) };
        buf = buf.subarray(end + 4 + len);
        s.write(msg('GET'), () => undefined);
      });
      s.on('end', () => (first ? resolve({ ...first, secondAnswered: false }) : reject(new Error(`${path}: closed before a response`))));
      s.on('error', (e) => (first ? resolve({ ...first, secondAnswered: false }) : reject(e)));
      s.write(msg(method));
    });

  const nf = (p: string) => `/pub/${SVC}/nullfile/${p}`;
  const cases: Array<[string, string, Record<string, string>, number, string, boolean]> = [
    // method, path, headers, status, body length, closes
    ['GET', nf('1_0'), {}, 200, '1', true],
    ['HEAD', nf('1_0'), {}, 200, '1', true],
    ['GET', nf('5_0'), { Range: 'bytes=0-0' }, 206, '1', true],
    ['GET', nf('5_0'), { Range: 'bytes=1-1' }, 206, '1', false],
    ['GET', nf('2_0'), {}, 200, '2', false],
    ['GET', nf('2_0'), { Range: 'bytes=0-1' }, 206, '2', false],
    // The mirror's own files (--files), by the same rule.
    ['GET', '/pub/one.bin', {}, 200, '1', true],
    ['GET', '/pub/five.bin', { Range: 'bytes=0-0' }, 206, '1', true],
    ['GET', '/pub/five.bin', { Range: 'bytes=4-4' }, 206, '1', false],
    ['GET', '/pub/two.bin', {}, 200, '2', false],
  ];
  for (const [method, path, headers, status, length, closes] of cases) {
    const r = await exchange(method, path, headers);
    const what = `${method} ${path}${headers.Range ? ` ${headers.Range}` : ''}`;
    t.equal(r.head.line.split(' ')[1], String(status), `${what}: ${status}`);
    t.equal(r.head.headers['content-length'], length, `${what}: Content-Length ${length}`);
    if (method === 'GET') {
      const file = content[path];
      const want = file ? file.subarray(...(headers.Range ? headers.Range.slice(6).split('-').map((n, i) => Number(n) + i) : [0])) : Buffer.alloc(Number(length));
      t.ok(r.body.equals(want), `${what}: ${file ? 'the file' : 'zeros'}`);
    }
    if (closes) {
      t.equal(r.head.headers.connection?.toLowerCase(), 'close', `${what}: Connection: close`);
      t.notOk(r.secondAnswered, `${what}: the server really closed the connection`);
    } else {
      t.not(r.head.headers.connection?.toLowerCase(), 'close', `${what}: kept alive`);
      t.ok(r.secondAnswered, `${what}: a second request is answered on the same connection`);
    }
  }
});
