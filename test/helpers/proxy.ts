// The proxy in-process on 127.0.0.1 with a free port and its own store and
// engine (a real aria2c), its access log captured; stopped in t.teardown.
// Also a gate in front of a mirror that slows or stops aria2's web-seed
// requests (told apart by aria2's User-Agent) to make stalls and
// mid-download faults happen on cue, while other requests pass untouched.
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import type { Test } from 'tap';
import { freePort } from '../../src/core/aria2.js';
import { startProxy, type ProxyOptions, type RunningProxy } from '../../src/proxy/server.js';
import { scratch } from './clients.js';
import { until } from './poll.js';

export interface TestProxy extends RunningProxy {
  log: string[];
  store: string;
  /** Resolves with the first log line matching re. */
  line(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Lines matching re, once there are `n` of them (the line is written as the response closes) or after a while. */
  count(re: RegExp, n: number): Promise<number>;
}

export async function startTestProxy(t: Test, o: Partial<ProxyOptions> = {}): Promise<TestProxy> {
  const log: string[] = [];
  const store = o.store ?? scratch(t, 'proxy-store');
  const p = await startProxy({
    host: '127.0.0.1',
    port: 0,
    mirrors: [],
    patterns: ['*.rpm', '*.deb'],
    minSize: 100 * 1024,
    stallMs: 5000,
    lookupTimeoutMs: 3000,
    noServiceTtlMs: 60_000,
    serviceName: 'torrent_service',
    storeSize: 1024 ** 3,
    seedTimeMs: 60_000,
    seedRatio: 0,
    seedMaxTorrents: 10,
    uploadLimit: 0,
    btPort: String(await freePort()),
    dht: false,
    lpd: false,
    pex: false,
    allowFrom: [],
    allowHosts: [],
    aria2c: 'aria2c',
    log: (l) => log.push(`pkgtorrent: ${l}`),
    accessLog: (l) => log.push(l.trimEnd()),
    ...o,
    store,
  });
  t.teardown(() => p.close());
  const line = async (re: RegExp, timeoutMs = 20_000) => {
    if (!(await until(timeoutMs, () => log.some((l) => re.test(l))))) throw new Error(`no log line ${re}:\n${log.join('\n')}`);
    return log.find((l) => re.test(l))!;
  };
  const count = async (re: RegExp, n: number) => {
    const c = () => log.filter((l) => re.test(l)).length;
    await until(3000, () => c() >= n);
    return c();
  };
  return Object.assign(p, { log, store, line, count });
}

/** GET through a forward proxy: absolute-form request target. */
export function viaProxy(proxy: string, url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }> {
  const p = new URL(proxy);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: p.hostname, port: p.port, path: url, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** hang: headers, then no bytes (a stall); refuse: the connection dropped at once (unreachable). */
export type GatePolicy = { kind: 'pass' } | { kind: 'slow'; bytesPerSecond: number } | { kind: 'hang' } | { kind: 'refuse' };

export interface Gate {
  url: string;
  policy: GatePolicy;
  /** Bytes sent to aria2 so far. */
  aria2Bytes: number;
  /** Drop Range from everyone else's requests, as a server that ignores it would. */
  ignoreRange: boolean;
}

/** A reverse proxy to `upstream` applying `policy` to aria2's requests only. */
export async function startGate(t: Test, upstream: string): Promise<Gate> {
  const up = new URL(upstream);
  const gate: Gate = { url: '', policy: { kind: 'pass' }, aria2Bytes: 0, ignoreRange: false };
  const server = createServer((req, res) => {
    const isAria2 = /^aria2/.test(req.headers['user-agent'] ?? '');
    if (isAria2 && gate.policy.kind === 'refuse') return void req.socket.destroy();
    if (!isAria2 && gate.ignoreRange) delete req.headers.range;
    const fwd = httpRequest({ host: up.hostname, port: up.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode!, r.headers);
      if (!isAria2) return void r.pipe(res);
      r.on('data', (c: Buffer) => {
        const p = gate.policy;
        if (p.kind === 'hang') return void r.pause();
        res.write(c);
        gate.aria2Bytes += c.length;
        if (p.kind === 'slow') {
          r.pause();
          setTimeout(() => r.resume(), (c.length / p.bytesPerSecond) * 1000);
        }
      });
      r.on('end', () => res.end());
      res.on('close', () => r.destroy());
    });
    fwd.on('error', () => res.destroy());
    req.pipe(fwd);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  gate.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return gate;
}

/**
 * The peer-to-peer proof: with the web seed refusing aria2, a fresh proxy
 * still gets all of `path` (`data`) over BitTorrent, from whatever peer the
 * tracker names, and the web seed sends it at most a little.
 */
export async function completesFromPeers(t: Test, gate: Gate, path: string, data: Buffer): Promise<void> {
  gate.policy = { kind: 'refuse' };
  const webSeedBytes = gate.aria2Bytes;
  const second = await startTestProxy(t, { stallMs: 60_000 });
  const r = await viaProxy(second.url, `${gate.url}${path}`);
  t.ok(r.body.equals(data), 'second proxy: bytes identical');
  const name = path.slice(path.lastIndexOf('/') + 1).replace(/\./g, '\\.');
  t.match(await second.line(new RegExp(`${name} 200 bittorrent`)), new RegExp(`torrent=${data.length} mirror=0 `), 'all of it over BitTorrent, no Range fallback');
  t.ok(gate.aria2Bytes - webSeedBytes < 64 * 1024, `the web seed sent the second proxy at most a little (${gate.aria2Bytes - webSeedBytes} bytes)`);
}
