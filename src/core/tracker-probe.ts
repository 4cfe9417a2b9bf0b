// Is a tracker there? One short exchange per tracker, each bounded by a
// timeout, many at once:
// - HTTP/HTTPS: an announce with event=stopped and numwant=0, which every
//   tracker accepts and which does not add us to any swarm. The answer must be
//   a bencoded dictionary; one carrying `failure reason` (unknown torrent,
//   whitelist) still proves a working tracker, so it counts as an answer.
// - UDP (BEP 15): the connect request; a connect response (or an error
//   response) is an answer. Resent a few times within the timeout, since UDP
//   may drop a packet.
import bencode from 'bencode';
import { createHash, randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import dgram from 'node:dgram';
import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import { errnoText } from './errors.js';
import { eachLimit } from './limit.js';
import { CREATED_BY } from './version.js';
import { announceUrlProblem } from './urls.js';

export type ProbeStatus =
  | 'ok' // a proper tracker answer
  | 'failure' // the tracker answered with a failure reason: reachable
  | 'error' // no usable answer: refused, not bencoded, DNS, TLS
  | 'timeout'; // nothing within the timeout

export interface ProbeResult {
  url: string;
  status: ProbeStatus;
  /** ok and failure: a tracker is there. */
  answered: boolean;
  /** Milliseconds until the answer; null when there was none. */
  latencyMs: number | null;
  detail: string;
}

/** The info hash we announce: fixed, so an operator can whitelist it on a private tracker. */
export const PROBE_INFO_HASH = createHash('sha1').update('pkgtorrent trackers check').digest();

const MAX_ANSWER = 256 * 1024;
const UDP_PROTOCOL_ID = 0x41727101980n;

export async function probeTracker(url: string, timeoutMs: number): Promise<ProbeResult> {
  const started = performance.now();
  const signal = AbortSignal.timeout(timeoutMs);
  const done = (status: ProbeStatus, detail: string): ProbeResult => {
    const answered = status === 'ok' || status === 'failure';
    return { url, status, answered, latencyMs: answered ? Math.round(performance.now() - started) : null, detail };
  };
  // Only what the trackers file would take is contacted: nothing else gets a request.
  const problem = announceUrlProblem(url);
  if (problem) return done('error', problem);
  try {
    const u = new URL(url);
    const outcome = u.protocol === 'udp:' ? await probeUdp(u, signal, timeoutMs) : await probeHttp(u, signal);
    return done(outcome.status, outcome.detail);
  } catch (e) {
    if (signal.aborted) return done('timeout', `no answer within ${formatMs(timeoutMs)}`);
    return done('error', errnoText(e));
  }
}

/** Probes every URL, at most `limit` at a time; results in input order. */
export async function probeTrackers(urls: readonly string[], timeoutMs: number, limit = 32): Promise<ProbeResult[]> {
  const results = new Array<ProbeResult>(urls.length);
  await eachLimit(urls, limit, async (url, i) => {
    results[i] = await probeTracker(url, timeoutMs);
  });
  return results;
}

interface Outcome {
  status: ProbeStatus;
  detail: string;
}

function percentEncodeBytes(b: Buffer): string {
  return Array.from(b, (x) => '%' + x.toString(16).padStart(2, '0')).join('');
}

export function announceProbeUrl(u: URL): string {
  const peerId = Buffer.concat([Buffer.from('-PT0001-'), Buffer.from(randomBytes(6).toString('hex'))]);
  const params =
    `info_hash=${percentEncodeBytes(PROBE_INFO_HASH)}&peer_id=${percentEncodeBytes(peerId)}` +
    '&port=6881&uploaded=0&downloaded=0&left=0&numwant=0&compact=1&event=stopped';
  // Private trackers put a passkey in the query; keep it.
  return `${u.origin}${u.pathname}${u.search ? u.search + '&' : '?'}${params}`;
}

async function probeHttp(u: URL, signal: AbortSignal): Promise<Outcome> {
  const lib = u.protocol === 'https:' ? https : http;
  const exchange = new Promise<{ statusCode: number; contentType: string; body: Buffer }>((resolve, reject) => {
    const req = lib.get(announceProbeUrl(u), { signal, headers: { 'User-Agent': CREATED_BY, 'Accept-Encoding': 'identity' } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_ANSWER) req.destroy(new Error(`answer larger than ${MAX_ANSWER / 1024} KiB`));
        else chunks.push(c);
      });
      res.on('end', () => resolve({ statusCode: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body: Buffer.concat(chunks) }));
      res.on('error', reject);
      res.on('close', () => reject(new Error('connection closed before the answer was complete')));
    });
    req.on('error', reject);
  });
  const { statusCode, contentType, body } = await abortable(exchange, signal);
  const head = `HTTP ${statusCode}`;
  let answer: unknown;
  try {
    answer = bencode.decode(body);
  } catch {
    answer = undefined;
  }
  if (!answer || typeof answer !== 'object' || Array.isArray(answer) || answer instanceof Uint8Array) {
    return { status: 'error', detail: `${head}: not a bencoded dictionary${snippet(body, contentType)}` };
  }
  const dict = answer as Record<string, unknown>;
  const failure = dict['failure reason'];
  if (failure instanceof Uint8Array) return { status: 'failure', detail: `${head}: failure reason: ${text(failure)}` };
  if (typeof dict.interval === 'number') {
    const warning = dict['warning message'] instanceof Uint8Array ? `, warning: ${text(dict['warning message'])}` : '';
    return { status: 'ok', detail: `${head}, interval ${dict.interval}s${warning}` };
  }
  return { status: 'error', detail: `${head}: bencoded answer without 'interval' or 'failure reason'` };
}

async function probeUdp(u: URL, signal: AbortSignal, timeoutMs: number): Promise<Outcome> {
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  const { address, family } = await abortable(lookup(host), signal);
  const socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
  const transaction = randomBytes(4);
  const request = Buffer.alloc(16);
  request.writeBigUInt64BE(UDP_PROTOCOL_ID, 0);
  request.writeUInt32BE(0, 8); // action: connect
  transaction.copy(request, 12);
  try {
    let resend: NodeJS.Timeout | undefined;
    const answer = new Promise<Outcome>((resolve, reject) => {
      const finish = () => clearInterval(resend);
      socket.on('error', (e) => {
        finish();
        reject(e);
      });
      socket.on('message', (msg: Buffer) => {
        if (msg.length < 8 || !msg.subarray(4, 8).equals(transaction)) return; // not our answer
        const action = msg.readUInt32BE(0);
        finish();
        if (action === 0 && msg.length >= 16) resolve({ status: 'ok', detail: 'connect answered' });
        else if (action === 3) resolve({ status: 'failure', detail: `error response: ${text(msg.subarray(8))}` });
        else resolve({ status: 'error', detail: `unexpected answer (action ${action}, ${msg.length} bytes)` });
      });
      // connect() makes the kernel report ICMP port unreachable as ECONNREFUSED.
      socket.connect(Number(u.port), address, () => {
        const send = () => socket.send(request, (e) => e && reject(e));
        send();
        resend = setInterval(send, Math.max(250, Math.floor(timeoutMs / 4)));
      });
    });
    return await abortable(answer, signal).finally(() => clearInterval(resend));
  } finally {
    socket.close();
  }
}

/** Settles with `p`, or rejects as soon as the signal aborts (nothing waits past the timeout). */
function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  // The reason is the AbortSignal.timeout() error the caller made.
  const reason = () => (signal.reason instanceof Error ? signal.reason : new Error(String(signal.reason)));
  if (signal.aborted) return Promise.reject(reason());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(reason());
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

function text(b: Uint8Array): string {
  return Buffer.from(b)
    .toString('utf8')
    .replace(/[\x00-\x1f\x7f]+/g, ' ')
    .trim()
    .slice(0, 120);
}

function snippet(body: Buffer, contentType: string): string {
  if (body.length === 0) return ' (empty answer)';
  const t = text(body.subarray(0, 40));
  return ` (${contentType || 'no content type'}: "${t}${body.length > 40 ? '...' : ''}")`;
}


function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
