// The proxy in-process on 127.0.0.1 with a free port and its own store and
// engine (a real bin/pkgtorrent-bt over libtorrent, with several peers
// allowed on 127.0.0.1), its access log captured; stopped in t.teardown.
// Also a gate in front of a mirror that slows or stops the requests for
// pieces (the proxy's, told apart by their User-Agent PIECE_AGENT, and
// aria2's web-seed requests, which `pkgtorrent fetch` still makes) to make
// stalls and mid-download faults happen on cue, while other requests (the
// torrent lookup, direct GETs, the answer's Range fallback) pass untouched.
import { createServer, request as httpRequest, type IncomingMessage } from 'node:http';
import type { Test } from 'tap';
import { PIECE_AGENT } from '../../src/proxy/mirror-pieces.js';
import { startProxy, type ProxyOptions, type RunningProxy } from '../../src/proxy/server.js';
import { freePort, scratch } from './clients.js';
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
    btLoopback: true,
    log: (l) => log.push(`pkgtorrent: ${l}`),
    accessLog: (l) => log.push(l.trimEnd()),
    ...o,
    store,
  });
  t.teardown(() => {
    // The proxy's own lines (engine restarts, warnings) say most about a failure.
    if (!t.passing()) process.stderr.write(`# proxy log:\n${log.map((l) => `#   ${l}`).join('\n')}\n`);
    return p.close();
  });
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

/** What the gate does to a request for pieces. hang: headers, then no bytes (a stall); refuse: the connection dropped at once (unreachable). */
export type GatePolicy = { kind: 'pass' } | { kind: 'slow'; bytesPerSecond: number } | { kind: 'hang' } | { kind: 'refuse' };

/** A request the gate saw. */
export interface GateRequest {
  method: string;
  path: string;
  userAgent: string;
  range: string;
  /** A request for pieces (the proxy's or aria2's): the policy applies to it. */
  pieces: boolean;
}

export interface Gate {
  url: string;
  /** One policy for every request for pieces, or one chosen per request (asked again at every chunk). */
  policy: GatePolicy | ((r: GateRequest) => GatePolicy);
  /** Bytes sent to the requests for pieces so far. */
  pieceBytes: number;
  /** Every request, in order of arrival. */
  requests: GateRequest[];
  /** Drop Range from everyone else's requests, as a server that ignores it would. */
  ignoreRange: boolean;
}

/** A request for pieces: the proxy's own (mirror-pieces.ts), or aria2's web seed (`pkgtorrent fetch`). */
export function isPieceRequest(userAgent: string | undefined): boolean {
  return userAgent === PIECE_AGENT || /^aria2/.test(userAgent ?? '');
}

/** The first byte a request's Range asks for (-1 without one). */
export function rangeStart(r: GateRequest): number {
  const m = /^bytes=(\d+)-/.exec(r.range);
  return m ? Number(m[1]) : -1;
}

/** A reverse proxy to `upstream` applying `policy` to the requests for pieces only. */
export async function startGate(t: Test, upstream: string): Promise<Gate> {
  const up = new URL(upstream);
  const gate: Gate = { url: '', policy: { kind: 'pass' }, pieceBytes: 0, requests: [], ignoreRange: false };
  const server = createServer((req, res) => {
    const seen: GateRequest = {
      method: req.method ?? '',
      path: req.url ?? '',
      userAgent: req.headers['user-agent'] ?? '',
      range: req.headers.range ?? '',
      pieces: isPieceRequest(req.headers['user-agent']),
    };
    gate.requests.push(seen);
    const policy = () => (typeof gate.policy === 'function' ? gate.policy(seen) : gate.policy);
    if (seen.pieces && policy().kind === 'refuse') return void req.socket.destroy();
    if (!seen.pieces && gate.ignoreRange) delete req.headers.range;
    const fwd = httpRequest({ host: up.hostname, port: up.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode!, r.headers);
      if (!seen.pieces) return void r.pipe(res);
      r.on('data', (c: Buffer) => {
        const p = policy();
        if (p.kind === 'hang') return void r.pause();
        res.write(c);
        gate.pieceBytes += c.length;
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

/** The byte counts of an access-log line of the proxy (0 for a field it leaves out). */
export function sources(line: string): { bytes: number; peers: number; mirror: number; store: number; seeder: number; range: number } {
  const field = (name: string) => Number(new RegExp(` ${name}=(\\d+)`).exec(line)?.[1] ?? 0);
  return { bytes: field('bytes'), peers: field('peers'), mirror: field('mirror'), store: field('store'), seeder: field('seeder'), range: field('range') };
}

/**
 * The peer-to-peer proof: with the mirror refusing every request for
 * pieces, a fresh proxy still gets all of `path` (`data`) over BitTorrent,
 * from whatever peer the tracker names: its log counts every byte as the
 * peers' and none as the mirror's, and the mirror sent no piece.
 */
export async function completesFromPeers(t: Test, gate: Gate, path: string, data: Buffer): Promise<void> {
  gate.policy = { kind: 'refuse' };
  const pieceBytes = gate.pieceBytes;
  const second = await startTestProxy(t, { stallMs: 60_000 });
  const r = await viaProxy(second.url, `${gate.url}${path}`);
  t.ok(r.body.equals(data), 'second proxy: bytes identical');
  const name = path.slice(path.lastIndexOf('/') + 1).replace(/\./g, '\\.');
  const line = await second.line(new RegExp(`${name} 200 bittorrent`));
  t.match(line, new RegExp(`bytes=${data.length} \\d+ms peers=${data.length} mirror=0 store=0 `), 'all of it from peers, none from the mirror');
  t.notMatch(line, /range=|fallback=/, 'no Range fallback');
  t.equal(gate.pieceBytes - pieceBytes, 0, 'the mirror sent the second proxy no piece');
}
