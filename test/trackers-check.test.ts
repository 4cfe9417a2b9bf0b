// `pkgtorrent trackers check` against a real opentracker (HTTP and UDP) and
// against the ways a tracker can be broken: closed port, garbage answer,
// failure reason, silence. Everything listens on 127.0.0.1 on free ports.
import t, { type Test } from 'tap';
import dgram from 'node:dgram';
import http from 'node:http';
import net from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli } from './helpers/cli.js';
import { need } from './helpers/oracles.js';
import { startOpentracker } from './helpers/opentracker.js';
import { freePort } from './helpers/clients.js';
import { PROBE_INFO_HASH } from '../src/core/tracker-probe.js';

/** An HTTP server answering every request with `body`; records what it was asked. */
async function httpServer(t: Test, body: string): Promise<{ port: number; urls: string[] }> {
  const urls: string[] = [];
  const server = http.createServer((req, res) => {
    urls.push(req.url ?? '');
    res.setHeader('Content-Type', 'text/html');
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return { port: (server.address() as net.AddressInfo).port, urls };
}

/** Accepts connections and never says anything. */
async function silentTcp(t: Test): Promise<{ port: number; connections: () => number }> {
  const sockets = new Set<net.Socket>();
  let count = 0;
  const server = net.createServer((s) => {
    count++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return { port: (server.address() as net.AddressInfo).port, connections: () => count };
}

/** A UDP socket that reads and never answers. */
async function silentUdp(t: Test): Promise<{ port: number; packets: () => number }> {
  const sock = dgram.createSocket('udp4');
  let packets = 0;
  sock.on('message', () => packets++);
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => sock.close(() => r())));
  return { port: sock.address().port, packets: () => packets };
}

/** A port nothing listens on (TCP and UDP): bound, then released. */
const closedPort = () => freePort(true);

function check(dir: string, extra: string[] = []) {
  return cli(['trackers', 'check', '--trackers', join(dir, 'trackers'), ...extra]);
}

t.test('probes every tracker in parallel and reports each line', async (t) => {
  if (!need(t, 'opentracker')) return;
  const dir = t.testdir({});
  // Debian's opentracker runs in whitelist mode; the probe's event=stopped
  // announce is answered without a whitelist entry.
  const ot = (await startOpentracker(t)).port;
  const garbage = await httpServer(t, '<html>not a tracker</html>');
  const failing = await httpServer(t, 'd14:failure reason12:unregisterede');
  const silent = await silentTcp(t);
  const silentU = await silentUdp(t);
  const closed = await closedPort();
  const lines = [
    '# trackers of the mirror',
    `http://127.0.0.1:${ot}/announce`,
    `udp://127.0.0.1:${ot}`,
    '',
    `http://127.0.0.1:${closed}/announce`,
    `udp://127.0.0.1:${closed}/announce`,
    `http://127.0.0.1:${garbage.port}/announce`,
    `http://127.0.0.1:${failing.port}/announce?passkey=abc`,
    `http://127.0.0.1:${silent.port}/announce`,
    `udp://127.0.0.1:${silentU.port}`,
    'ftp://127.0.0.1/announce',
    'not a url',
    'udp://127.0.0.1/announce',
    `HTTP://127.0.0.1:${ot}/announce`,
  ];
  writeFileSync(join(dir, 'trackers'), lines.join('\n') + '\n');

  const started = Date.now();
  const r = await check(dir, ['--timeout', '1s', '--json']);
  const elapsed = Date.now() - started;
  t.equal(r.code, 1, 'invalid lines make the check fail even though trackers answer');
  t.ok(elapsed < 3000, `two silent trackers with a 1s timeout, probed in parallel, took ${elapsed}ms`);
  const report = JSON.parse(r.stdout);
  const byLine = Object.fromEntries(report.lines.map((l: { line: number }) => [l.line, l]));
  t.match(byLine[2], { status: 'ok', answered: true, latencyMs: Number, detail: /^HTTP 200, interval \d+s$/ }, 'opentracker over HTTP');
  t.match(byLine[3], { status: 'ok', answered: true, detail: 'connect answered' }, 'opentracker over UDP (BEP 15)');
  t.match(byLine[5], { status: 'error', answered: false, latencyMs: null, detail: 'connection refused' });
  t.match(byLine[6], { status: 'error', detail: 'connection refused' }, 'UDP port unreachable is reported, not waited out');
  t.match(byLine[7], { status: 'error', detail: /^HTTP 200: not a bencoded dictionary \(text\/html: "<html>not a tracker<\/html>"\)$/ });
  t.match(byLine[8], { status: 'failure', answered: true, detail: 'HTTP 200: failure reason: unregistered' }, 'a failure reason is an answer');
  t.match(byLine[9], { status: 'timeout', answered: false, detail: 'no answer within 1s' });
  t.match(byLine[10], { status: 'timeout', detail: 'no answer within 1s' });
  t.match(byLine[11], { status: 'invalid', detail: "unsupported scheme 'ftp' (use http, https or udp)" });
  t.match(byLine[12], { status: 'invalid', detail: 'not a URL' });
  t.match(byLine[13], { status: 'invalid', detail: 'udp tracker without a port' });
  t.match(byLine[14], { status: 'duplicate', detail: 'same tracker as line 2' });
  t.notOk(byLine[1] || byLine[4], 'comments and blank lines are not reported');
  t.match(report, { trackers: 8, answered: 3, invalid: 3, duplicates: 1, ok: false });
  t.ok(silentU.packets() >= 1, 'the silent UDP tracker was asked');

  // The announce a tracker sees: our fixed info hash, no swarm joined, passkey kept.
  const q = new URLSearchParams(failing.urls[0]!.split('?')[1]);
  t.equal(q.get('passkey'), 'abc');
  t.equal(Buffer.from(q.get('info_hash')!, 'latin1').length, 20);
  t.equal(q.get('event'), 'stopped');
  t.equal(q.get('numwant'), '0');
  t.match(failing.urls[0], `info_hash=${Array.from(PROBE_INFO_HASH, (b) => '%' + b.toString(16).padStart(2, '0')).join('')}`);

  const text = await check(dir, ['--timeout', '1s']);
  t.equal(text.code, 1);
  const out = text.stdout.trim().split('\n');
  t.match(out[0], /^LINE +TRACKER +STATUS +LATENCY +DETAIL$/);
  t.match(out[1], new RegExp(`^2 +http://127\\.0\\.0\\.1:${ot}/announce +ok +\\d+ ms +HTTP 200, interval \\d+s$`));
  t.match(out[9], /^11 +ftp:\/\/127\.0\.0\.1\/announce +invalid +- +unsupported scheme 'ftp'/);
  t.equal(out.at(-1), `${join(dir, 'trackers')}: 3 of 8 trackers answered, 3 invalid lines, 1 duplicate`);
});

t.test('exit status: 0 when some tracker answers and every line is valid, 1 when none answers', async (t) => {
  if (!need(t, 'opentracker')) return;
  const dir = t.testdir({});
  // Debian's opentracker runs in whitelist mode; the probe's event=stopped
  // announce is answered without a whitelist entry.
  const ot = (await startOpentracker(t)).port;
  const closed = await closedPort();
  writeFileSync(join(dir, 'trackers'), `udp://127.0.0.1:${ot}/announce\nhttp://127.0.0.1:${closed}/announce\n`);
  const some = await check(dir, ['--timeout', '2s']);
  t.equal(some.code, 0, some.stdout + some.stderr);
  t.match(some.stdout, /1 of 2 trackers answered, 0 invalid lines, 0 duplicates\n$/);

  writeFileSync(join(dir, 'trackers'), `http://127.0.0.1:${closed}/announce\nudp://127.0.0.1:${closed}\n`);
  const none = await check(dir, ['--timeout', '2s']);
  t.equal(none.code, 1);
  t.match(none.stdout, /0 of 2 trackers answered/);

  // A tracker URL without a path is probed but flagged; opentracker, like
  // most trackers, does not answer announces there.
  writeFileSync(join(dir, 'trackers'), `http://127.0.0.1:${ot}\n`);
  const warned = await check(dir, ['--timeout', '2s']);
  t.equal(warned.code, 1);
  t.match(warned.stdout, /^1 +http:\/\/127\.0\.0\.1:\d+ +error +- +HTTP \d+: not a bencoded dictionary .*; warning: no announce path \(most trackers use \/announce\)$/m);
});

t.test('--offline checks syntax only and contacts no tracker', async (t) => {
  const dir = t.testdir({});
  const silent = await silentTcp(t);
  const silentU = await silentUdp(t);
  writeFileSync(join(dir, 'trackers'), `http://127.0.0.1:${silent.port}/announce\nudp://127.0.0.1:${silentU.port}\n`);
  const ok = await check(dir, ['--offline', '--json']);
  t.equal(ok.code, 0);
  t.match(JSON.parse(ok.stdout), { offline: true, trackers: 2, answered: 0, ok: true, lines: [{ status: 'valid' }, { status: 'valid' }] });
  t.equal(silent.connections(), 0, 'no TCP connection');
  t.equal(silentU.packets(), 0, 'no UDP packet');

  writeFileSync(join(dir, 'trackers'), `http://127.0.0.1:${silent.port}/announce\nhttp://127.0.0.1:0/announce\nhttp://x/a#frag\n`);
  const bad = await check(dir, ['--offline']);
  t.equal(bad.code, 1);
  t.match(bad.stdout, /^2 +http:\/\/127\.0\.0\.1:0\/announce +invalid +- +port 0$/m);
  t.match(bad.stdout, /^3 +http:\/\/x\/a#frag +invalid +- +fragment '#frag' is never sent to a tracker$/m);
  t.match(bad.stdout, /1 tracker not probed \(--offline\), 2 invalid lines, 0 duplicates\n$/);
});

t.test('error paths: missing file, empty file, bad timeout', async (t) => {
  const dir = t.testdir({ empty: '# nothing yet\n\n' });
  const missing = await cli(['trackers', 'check', '--trackers', join(dir, 'nope')]);
  t.equal(missing.code, 1);
  t.equal(missing.stderr, `pkgtorrent: trackers file ${join(dir, 'nope')}: no such file or directory\n`);
  t.equal(missing.stdout, '');

  const empty = await cli(['trackers', 'check', '--trackers', join(dir, 'empty')]);
  t.equal(empty.code, 1, 'no tracker answers when there is none');
  t.equal(empty.stdout, `${join(dir, 'empty')}: no trackers, so none answers\n`);
  const emptyOffline = await cli(['trackers', 'check', '--offline', '--trackers', join(dir, 'empty')]);
  t.equal(emptyOffline.code, 0);

  // The trackers file comes from the environment like every setting.
  const fromEnv = await cli(['trackers', 'check', '--offline'], { vars: { PKGTORRENT_TRACKERS: join(dir, 'empty') } });
  t.equal(fromEnv.code, 0, fromEnv.stderr);

  for (const bad of ['0s', 'soon', '-1']) {
    const r = await cli(['trackers', 'check', '--trackers', join(dir, 'empty'), '--timeout', bad]);
    t.equal(r.code, 2, `--timeout ${bad}`);
    t.match(r.stderr, /^pkgtorrent: invalid --timeout/);
  }
  const ms = await cli(['trackers', 'check', '--offline', '--trackers', join(dir, 'empty'), '--timeout', '300ms']);
  t.equal(ms.code, 0, 'milliseconds are accepted');
});
