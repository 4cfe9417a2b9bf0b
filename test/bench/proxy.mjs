#!/usr/bin/env node
// The proxy against curl straight from the mirror, same run, interleaved
// rounds, everything on loopback with the web seed as the only source:
//   - a 200 MB package, cold (a fresh proxy and store each round): throughput
//     ratio proxy/direct (target >= 0.60) and time to first byte (<= 0.5 s).
//     Counted: curl's total time for the one request, nothing else. The
//     proxy and its engine are started and warmed by one small BitTorrent
//     download before the timed request, as a proxy in service would be;
//     direct and proxy alternate which goes first in a round;
//   - a 50 KB package forced through BitTorrent (--min-size 0) and through
//     the proxy's direct path: the latency added, to choose --min-size;
//   - the proxy's cost per request with --metrics-listen: 50 KB GETs on its
//     direct path (mirror mode, autocannon, 10 connections), a proxy with
//     metrics against one without, interleaved rounds: req/s ratio (target
//     >= 0.95) and the proxy's CPU per request.
//
//   npm run bench:proxy           (builds first)
//   BENCH_ROUNDS=5 BENCH_MB=200 node test/bench/proxy.mjs
//   BENCH_SMALL=0 skips the 50 KB part, BENCH_METRICS=0 the metrics part.
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { randomFillSync } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer } from 'node:net';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const { startProxy } = await import(join(REPO, 'dist/proxy/server.js'));
// A free TCP port on loopback (bound and released at once).
const freePort = () =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
// The engine is libtorrent (bin/pkgtorrent-bt); its CPU is measured from /proc as aria2c's was.
const ROUNDS = Number(process.env.BENCH_ROUNDS || 5);
const MB = Number(process.env.BENCH_MB || 200);
const SMALL_ROUNDS = Number(process.env.BENCH_SMALL ?? 20);
const METRICS_ROUNDS = Number(process.env.BENCH_METRICS ?? ROUNDS);

const dir = mkdtempSync(join(tmpdir(), 'pkgtorrent-bench-proxy-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
mkdirSync(join(dir, 'root/pub'), { recursive: true });
mkdirSync(join(dir, 'cache'));
const fd = openSync(join(dir, 'root/pub/big.rpm'), 'w');
const chunk = Buffer.alloc(1024 * 1024);
for (let i = 0; i < MB; i++) writeSync(fd, randomFillSync(chunk));
closeSync(fd);
writeFileSync(join(dir, 'root/pub/small.rpm'), randomFillSync(Buffer.alloc(50 * 1024)));
writeFileSync(join(dir, 'root/pub/warm.rpm'), randomFillSync(Buffer.alloc(2 * 1024 * 1024)));

const servePort = await freePort();
const serve = spawn('/usr/bin/env', ['-u', 'NODE_OPTIONS', process.execPath, join(REPO, 'bin/pkgtorrent'), 'serve', '--files', '--root', join(dir, 'root'), '--cache-dir', join(dir, 'cache'), '--trackers', join(dir, 'none'), '--port', String(servePort)], { stdio: 'ignore' });
process.on('exit', () => serve.kill());
const mirror = `http://127.0.0.1:${servePort}`;
for (let i = 0; i < 100; i++) {
  if ((await curl(`${mirror}/pub/small.rpm`)).ok) break;
  await new Promise((r) => setTimeout(r, 100));
}
// Hash both files once: the service's cost is not the proxy's.
await curl(`${mirror}/pub/torrent_service/simple/pub/big.rpm`);
await curl(`${mirror}/pub/torrent_service/simple/pub/small.rpm`);
await curl(`${mirror}/pub/torrent_service/simple/pub/warm.rpm`);

// Asynchronous: the proxy runs in this process and must answer meanwhile.
async function curl(url, proxy) {
  const r = await promisify(execFile)('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code} %{time_starttransfer} %{time_total} %{size_download}', ...(proxy ? ['-x', proxy] : []), url], { encoding: 'utf8' }).catch((e) => ({ stdout: e.stdout ?? '' }));
  const [code, ttfb, total, size] = r.stdout.split(' ');
  return { ok: code === '200', ttfb: Number(ttfb), total: Number(total), size: Number(size) };
}

// CPU seconds of a process from /proc (Linux), null elsewhere: the load-independent side of the figures.
function procCpu(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return null;
  }
}

async function withProxy(minSize, fn, extra = {}) {
  const store = mkdtempSync(join(dir, 'store-'));
  const p = await startProxy({
    host: '127.0.0.1', port: 0, mirrors: [`m=${mirror}`], patterns: [], minSize, stallMs: 5000, lookupTimeoutMs: 3000, noServiceTtlMs: 60_000,
    serviceName: 'torrent_service', store, storeSize: 4 * 1024 ** 3, seedTimeMs: 60_000, seedRatio: 0, seedMaxTorrents: 10, uploadLimit: 0,
    btPort: String(await freePort()), dht: false, lpd: false, pex: false, allowFrom: [], allowHosts: [],
    log: () => undefined, accessLog: () => undefined,
    ...extra,
  });
  try {
    return await fn(p.url, p.engine);
  } finally {
    await p.close();
    rmSync(store, { recursive: true, force: true });
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (x, d = 2) => x.toFixed(d);

const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
console.log(`load average at start: ${load()}`);
const ratios = [];
const ttfbs = [];
const proxyCpus = [];
const ariaCpus = [];
for (let i = 0; i < ROUNDS; i++) {
  const big = `${mirror}/pub/big.rpm`;
  const directFirst = i % 2 === 0;
  const direct0 = directFirst ? await curl(big) : null;
  const viaProxy = await withProxy(1024 * 1024, async (url, engine) => {
    if (!(await curl(`${mirror}/pub/warm.rpm`, url)).ok) throw new Error(`round ${i}: the warm-up download failed`);
    const [cpu0, aria0] = [process.cpuUsage(), procCpu(engine.pid)];
    const r = await curl(big, url);
    const cpu = process.cpuUsage(cpu0);
    const aria1 = procCpu(engine.pid);
    return { ...r, proxyCpu: (cpu.user + cpu.system) / 1e6, ariaCpu: aria0 === null || aria1 === null ? NaN : aria1 - aria0 };
  });
  const direct = direct0 ?? (await curl(big));
  if (!direct.ok || !viaProxy.ok || viaProxy.size !== MB * 1024 * 1024) throw new Error(`round ${i}: a download failed`);
  const r = direct.total / viaProxy.total;
  ratios.push(r);
  ttfbs.push(viaProxy.ttfb);
  proxyCpus.push(viaProxy.proxyCpu);
  ariaCpus.push(viaProxy.ariaCpu);
  console.log(`round ${i + 1} (${directFirst ? 'direct' : 'proxy'} first): direct ${fmt((MB * 1.048576) / direct.total, 0)} MB/s, proxy ${fmt((MB * 1.048576) / viaProxy.total, 0)} MB/s (ratio ${fmt(r)}), proxy first byte ${fmt(viaProxy.ttfb, 3)} s, CPU proxy ${fmt(viaProxy.proxyCpu)} s engine ${fmt(viaProxy.ariaCpu)} s`);
}
console.log(`${MB} MiB cold through the proxy (no peers: the mirror's HTTP only): throughput ratio median ${fmt(median(ratios))} (range ${fmt(Math.min(...ratios))}-${fmt(Math.max(...ratios))}, target >= 0.60); time to first byte median ${fmt(median(ttfbs), 3)} s (range ${fmt(Math.min(...ttfbs), 3)}-${fmt(Math.max(...ttfbs), 3)}, target <= 0.5)`);
console.log(`CPU for the ${MB} MiB request (not disturbed by load): proxy process median ${fmt(median(proxyCpus))} s, engine median ${fmt(median(ariaCpus))} s; load average now: ${load()}`);

// 50 KB: cold BitTorrent each time needs a fresh store; one proxy per path kind.
if (SMALL_ROUNDS > 0) await small();
if (METRICS_ROUNDS > 0) await metricsCost();
process.exit(0);

async function small() {
const added = { bittorrent: [], direct: [] };
for (let i = 0; i < SMALL_ROUNDS; i++) {
  const d = (await curl(`${mirror}/pub/small.rpm`)).total;
  const bt = await withProxy(0, async (url) => (await curl(`${mirror}/pub/small.rpm`, url)).total);
  const dp = await withProxy(1024 * 1024, async (url) => (await curl(`${mirror}/pub/small.rpm`, url)).total);
  added.bittorrent.push(bt - d);
  added.direct.push(dp - d);
}
console.log(`50 KB package, added latency over direct (median of ${SMALL_ROUNDS}): through BitTorrent ${fmt(median(added.bittorrent) * 1000, 1)} ms, through the proxy's direct path ${fmt(median(added.direct) * 1000, 1)} ms`);
}

// Both proxies run for the whole part, in this process; the load comes from
// autocannon as a child process, so this process's CPU around a run is the
// proxies' (the other one idle).
async function metricsCost() {
  const AUTOCANNON = join(REPO, 'node_modules/autocannon/autocannon.js');
  const run = async (url) => {
    const { stdout } = await promisify(execFile)(process.execPath, [AUTOCANNON, '-c', '10', '-d', '4', '-j', `${url}/m/pub/small.rpm`], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    return JSON.parse(stdout);
  };
  await withProxy(1024 * 1024, (plainUrl) =>
    withProxy(
      1024 * 1024,
      async (meteredUrl) => {
        const cases = { plain: plainUrl, metrics: meteredUrl };
        const rates = { plain: [], metrics: [] };
        const cpu = { plain: [], metrics: [] };
        for (const u of Object.values(cases)) await run(u); // warm-up
        for (let i = 0; i < METRICS_ROUNDS; i++) {
          for (const n of i % 2 ? ['metrics', 'plain'] : ['plain', 'metrics']) {
            const c0 = process.cpuUsage();
            const r = await run(cases[n]);
            const c = process.cpuUsage(c0);
            if (r.non2xx || r.errors) throw new Error(`${n}: ${r.non2xx} non-2xx, ${r.errors} errors`);
            rates[n].push(r.requests.total / r.duration);
            cpu[n].push(((c.user + c.system) / r.requests.total));
          }
          console.log(`metrics round ${i + 1}: ${fmt(rates.plain[i], 0)} req/s without, ${fmt(rates.metrics[i], 0)} with (ratio ${fmt(rates.metrics[i] / rates.plain[i])})`);
        }
        const ratios = rates.metrics.map((v, i) => v / rates.plain[i]);
        console.log(
          `50 KB GETs on the proxy's direct path, --metrics-listen on vs off (${METRICS_ROUNDS} interleaved rounds of 4 s): ` +
            `req/s ratio median ${fmt(median(ratios))} (range ${fmt(Math.min(...ratios))}-${fmt(Math.max(...ratios))}, target >= 0.95); ` +
            `proxy CPU per request ${fmt(median(cpu.plain), 0)} us without, ${fmt(median(cpu.metrics), 0)} us with`,
        );
      },
      { metricsListen: '127.0.0.1:0' },
    ),
  );
}
