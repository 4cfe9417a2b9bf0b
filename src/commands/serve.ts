// `pkgtorrent serve`: the HTTP torrent service (pkgtorrent-service(8)), a
// thin node:http wrapper over the core. This module only reads flags, starts
// one server or a cluster of them (supervisor.ts), and stops on SIGINT/SIGTERM.
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Command } from '@commander-js/extra-typings';
import type { AnyCommand, Context } from '../cli/context.js';
import { settingFlags, settingOption } from '../cli/setting-options.js';
import { answerAsks, nodeCluster, stopRequested, supervise, type ClusterEnv, type Workers } from '../cli/supervisor.js';
import { startMetricsListener } from '../core/metrics-http.js';
import { ClusterMetrics, clusterReady, workerAnswers } from '../service/metrics.js';
import type { SettingKey } from '../core/config.js';
import { PkgError } from '../core/errors.js';
import { startServer } from '../service/server.js';

const USAGE = `
Answers /<prefix>/<service name>/digest/<sha1> (the yum-torrent client),
/<prefix>/<service name>/simple/<path or glob> and .../nullfile/<size>_<n>.
Prints "pkgtorrent: serving URL" on stderr when ready, then one access log
line per request (--log-format json: one JSON object per line). SIGINT or SIGTERM stops it; requests in flight get 10 s.

Examples:
  pkgtorrent serve --root /srv/mirror --trackers /etc/pkgtorrent/trackers
  pkgtorrent serve --root /srv/mirror --files --host 0.0.0.0 --port 8080
  curl -o big.iso.torrent http://mirror:8080/pub/torrent_service/simple/pub/isos/big.iso`;

// The launcher a cluster worker runs: the same binary and arguments.
const BIN = fileURLToPath(new URL('../../bin/pkgtorrent', import.meta.url));

/** Settings that serve also takes as its own flags, named as the settings. */
const KEYS = [
  'host',
  'port',
  'base-url',
  'web-seeds',
  'private',
  'source',
  'trust-proxy',
  'files',
  'workers',
  'jobs',
  'service-name',
  'trackers-interval',
  'max-body',
  'max-paths',
  'max-glob-matches',
  'queue-limit',
  'request-timeout',
  'revalidate',
  'seed',
  'seed-listen',
  'seed-connections',
  'seed-slots',
  'seed-max-torrents',
  'seed-idle',
  'upload-limit',
  'tracker-whitelist',
  'tracker-pid-file',
  'metrics-listen',
  'log-format',
] as const satisfies readonly SettingKey[];

export function register(program: Command, ctx: Context, clusterEnv: ClusterEnv = nodeCluster): AnyCommand {
  const command = program.command('serve').description('run the HTTP torrent service');
  for (const key of KEYS) command.addOption(settingOption(key));
  return command
    .addHelpText('after', USAGE)
    .action(async (opts: Record<string, unknown>, cmd: AnyCommand) => {
      const link = clusterEnv.link;
      try {
        await serve(ctx, cmd, opts, clusterEnv);
      } finally {
        // A worker's channel would keep it alive, also after a failed start.
        link?.disconnect();
      }
    });
}

async function serve(ctx: Context, cmd: AnyCommand, opts: Record<string, unknown>, clusterEnv: ClusterEnv): Promise<void> {
  // opts holds serve's own flags only: the global ones are read by resolve.
  // Only serve's keys: --host is also the flag of the proxy's proxy-host.
  const s = (await ctx.resolve(cmd, settingFlags(opts, KEYS))).values;
  const root = await ctx.root(cmd);
  const cacheDir = await ctx.openCacheDir(cmd);
  const signal = ctx.env.signal;
  const stderr = ctx.env.stderr;
  if (s['log-format'] === 'json') await ctx.logAsJson();
  const log = (line: string) => ctx.message(line);
  const link = clusterEnv.link;

  if (s.seed && s.workers > 1) {
    // One engine must own the BitTorrent port; workers would each start one.
    throw new PkgError('usage', '--seed runs one seeder per service: use it with --workers 1');
  }
  if (s.workers > 1 && !link) {
    // The primary owns the metrics listener: it asks the workers on each scrape (ClusterMetrics).
    let workers: Workers | null = null;
    const metrics = s['metrics-listen'] ? await startMetricsListener(s['metrics-listen'], new ClusterMetrics(() => workers), clusterReady(() => workers)) : null;
    if (metrics) log(`metrics on ${metrics.url}/metrics`);
    const vars = Object.fromEntries(Object.entries(ctx.env.vars).filter(([, v]) => v !== undefined)) as Record<string, string>;
    try {
      await supervise({
        cluster: clusterEnv.primary(BIN, ctx.env.argv, vars),
        workers: s.workers,
        signal,
        log,
        onListening: (addr) => {
          const host = addr.addressType === 6 ? `[${addr.address}]` : addr.address;
          log(`serving http://${host}:${addr.port}/ (root ${root.dir}, ${s.workers} workers)`);
        },
        onWorkers: (w) => (workers = w),
      });
    } finally {
      await metrics?.close();
    }
    return;
  }

  const server = await startServer({
    root,
    cacheDir,
    trackersFile: s.trackers,
    trackersIntervalMs: s['trackers-interval'],
    pieceLength: s['piece-length'],
    serviceName: s['service-name'],
    infoSettings: { private: s.private, source: s.source },
    webSeeds: s['web-seeds'],
    host: s.host,
    port: s.port,
    baseUrl: s['base-url'],
    trustProxy: s['trust-proxy'],
    files: s.files,
    // Workers share the cores: each hashes on its share of them.
    jobs: s.jobs || Math.max(1, Math.ceil(availableParallelism() / s.workers)),
    maxBody: s['max-body'],
    maxPaths: s['max-paths'],
    maxGlobMatches: s['max-glob-matches'],
    queueLimit: s['queue-limit'],
    requestTimeoutMs: s['request-timeout'],
    revalidateMs: s.revalidate,
    seed: s.seed
      ? {
          engine: { origin: true, listen: s['seed-listen'], uploadLimit: s['upload-limit'], connections: s['seed-connections'], unchokeSlots: s['seed-slots'] },
          maxTorrents: s['seed-max-torrents'],
          idleMs: s['seed-idle'],
        }
      : undefined,
    trackerWhitelist: s['tracker-whitelist'] ? { file: s['tracker-whitelist'], pidFile: s['tracker-pid-file'] } : undefined,
    log,
    accessLog: (line) => stderr.write(line),
    logFormat: s['log-format'],
    // A cluster worker counts for its primary's listener.
    metricsListen: link ? undefined : s['metrics-listen'],
    metricsForPrimary: Boolean(link && s['metrics-listen']),
  });
  if (link && server.metrics) answerAsks(link, workerAnswers(server.metrics, server.ready));
  if (server.metricsUrl) log(`metrics on ${server.metricsUrl}/metrics`);
  if (!link) log(`serving ${server.url}/ (root ${root.dir})${server.engine ? `, seeding on ${s['seed-listen']} (libtorrent ${server.engine.version})` : ''}`);
  // A cluster worker also stops when the primary says so (a second signal would kill it at once).
  await stopRequested(signal, link);
  await server.close();
}
