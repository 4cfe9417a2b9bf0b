// --log-format json: every line serve and the proxy write parses as one JSON
// object; an access object has the text line's fields (compared with the
// text line a twin process wrote for the same request) plus the client's
// address and user agent; pino's options took effect (ISO time, level by
// name, no pid or hostname).
import t from 'tap';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { bin, BIN, nodeCommand } from './helpers/cli.js';
import { freePort, scratch } from './helpers/clients.js';
import { startMirror, startPlainMirror, writeTree } from './helpers/mirror.js';
import { needBtEngine } from './helpers/oracles.js';
import { until } from './helpers/poll.js';
import { startTestProxy, viaProxy } from './helpers/proxy.js';
import { request, startServe } from './helpers/server.js';
import { textLine, type ProxyAccess } from '../src/proxy/access-log.js';

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** Every line of `text` as JSON; a line that does not parse fails the test with the line in view. */
function objects(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        throw new Error(`not a JSON line: ${l}`);
      }
    });
}

t.test('serve: the access objects say what the text lines say, plus client and agent', async (t) => {
  const dir = scratch(t, 'json-serve');
  const body = randomBytes(50_000);
  writeTree(join(dir, 'root'), { pub: { 'a.rpm': body, 'q"uote\\d.rpm': 'x' } });
  mkdirSync(join(dir, 'cache'));
  const common = { root: join(dir, 'root'), cacheDir: join(dir, 'cache'), files: true, inProcess: true };
  const text = await startServe(t, common);
  const json = await startServe(t, { ...common, args: ['--log-format', 'json'] });
  const asks: Array<{ method: string; path: string }> = [
    { method: 'GET', path: '/pub/a.rpm' },
    { method: 'HEAD', path: '/pub/a.rpm' },
    { method: 'GET', path: '/pub/nothing.rpm' },
    { method: 'GET', path: '/pub/q%22uote%5Cd.rpm' },
    { method: 'GET', path: '/pub/torrent_service/digest/' + '0'.repeat(40) },
  ];
  for (const s of [text, json]) {
    for (const a of asks) await request(s.url, a.path, { method: a.method, headers: { 'user-agent': 'json-test/1 "quoted"' } });
  }
  await text.waitFor(/torrent_service\/digest\/0{40} \d{3} /);
  await json.waitFor(/torrent_service\/digest\/0{40}"/);

  const textLines = text.stderr().split('\n').filter((l) => /^\d{4}-/.test(l));
  const all = objects(json.stderr());
  const access = all.filter((o) => o.msg === 'access');
  t.equal(access.length, asks.length, 'one object per request');
  t.equal(textLines.length, asks.length, 'one text line per request');
  for (const [i, o] of access.entries()) {
    const [, method, path, status, bytes] = textLines[i]!.split(' ');
    t.same(
      { method: o.method, path: o.path, status: String(o.status), bytes: String(o.bytes) },
      { method, path, status, bytes },
      `${asks[i]!.method} ${asks[i]!.path}: the text line's fields`,
    );
    t.equal(o.cut, false);
    t.equal(typeof o.ms, 'number');
    t.equal(o.client, '127.0.0.1', 'client address');
    t.equal(o.agent, 'json-test/1 "quoted"', 'user agent, quotes and all');
    t.match(o.time, ISO, 'ISO time');
    t.ok(Math.abs(Date.parse(o.time as string) - Date.now()) < 600_000, `${String(o.time)}: the time of the request, not another`);
    t.equal(o.level, 'info', 'level by name');
    t.notOk('pid' in o || 'hostname' in o, 'no pid or hostname');
  }
  t.equal(access[0]!.bytes, body.length);
  t.equal(access[2]!.status, 404);
  const started = all.find((o) => typeof o.msg === 'string' && o.msg.startsWith('serving http://'));
  t.ok(started, 'the start message is an object too');
  t.equal(started?.level, 'info');
});

t.test('proxy: the same fields as the text line, for a direct answer and a BitTorrent one', async (t) => {
  if (!needBtEngine(t)) return;
  const plainRoot = scratch(t, 'json-plain');
  writeTree(plainRoot, { 'index.html': 'hello' });
  const plain = await startPlainMirror(t, plainRoot);
  const pkg = randomBytes(300 * 1024);
  const mirror = await startMirror(t, { pub: { 'big-1.0.rpm': pkg } });
  const textProxy = await startTestProxy(t);
  const jsonProxy = await startTestProxy(t, { logFormat: 'json' });
  const urls = [`${plain.url}/index.html`, `${mirror.url}/pub/big-1.0.rpm`];
  for (const p of [textProxy, jsonProxy]) {
    for (const u of urls) {
      const r = await viaProxy(p.url, u, { 'user-agent': 'Debian APT-HTTP/1.3 (2.6.1)' });
      t.equal(r.status, 200);
    }
  }
  t.ok(await textProxy.count(/ 200 /, 2) >= 2);
  t.ok(await until(10_000, () => jsonProxy.log.filter((l) => l.startsWith('{')).length >= 2), jsonProxy.log.join('\n'));
  const entries = objects(jsonProxy.log.filter((l) => l.startsWith('{')).join('\n'));
  const texts = textProxy.log.filter((l) => / 200 /.test(l));
  t.equal(entries.length, 2);
  // Time and duration differ between the twins; the rest must not.
  const steady = (line: string) => line.replace(/^\S+ /, '').replace(/ \d+ms /, ' _ms ').replace(/connections=\d+ seeders=\d+/, '');
  for (const [i, o] of entries.entries()) {
    t.equal(o.level, 'info');
    t.match(o.time, ISO);
    t.equal(o.msg, 'access');
    t.equal(o.client, '127.0.0.1');
    t.equal(o.agent, 'Debian APT-HTTP/1.3 (2.6.1)');
    const fields = Object.fromEntries(Object.entries(o).filter(([k]) => !['level', 'time', 'msg'].includes(k)));
    t.equal(steady(textLine(fields as unknown as ProxyAccess).trimEnd()), steady(texts[i]!), `${urls[i]}: the text line's fields`);
  }
  t.equal(entries[0]!.route, 'direct');
  t.equal(entries[1]!.route, 'bittorrent');
  t.equal(entries[1]!.bytes, pkg.length);
  t.equal(Number(entries[1]!.peers) + Number(entries[1]!.mirror) + Number(entries[1]!.store), pkg.length, 'bytes by source add up');
});

t.test('the binaries: every line parses, the start message included; a bad format is one line, exit 2', async (t) => {
  const bad = await bin(['serve', '--log-format', 'yaml']);
  t.equal(bad.code, 2);
  t.equal(bad.stderr, "pkgtorrent: invalid log format 'yaml': expected text or json\n");
  if (!needBtEngine(t)) return;
  const store = scratch(t, 'json-store');
  const child = spawn(...nodeCommand(BIN, ['proxy', '--port', '0', '--store', store, '--bt-port', String(await freePort()), '--log-format', 'json']), {
    env: { ...process.env, PKGTORRENT_CONFIG: '' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise((r) => child.once('exit', r));
  t.teardown(() => void child.kill('SIGKILL'));
  t.ok(await until(20_000, () => /"msg":"proxy on http:/.test(err)), err);
  const url = /proxy on (http:\/\/[^\s"/]+)\//.exec(err)![1]!;
  const refused = await viaProxy(url, '/not-a-proxy-request');
  t.equal(refused.status, 404);
  t.ok(await until(10_000, () => /"route":"refused"/.test(err)), err);
  child.kill('SIGTERM');
  await exited;
  const lines = objects(err);
  t.ok(lines.length >= 2, 'start message and access object');
  for (const o of lines) t.match(o, { level: /^(info|warn)$/, time: ISO });
});
