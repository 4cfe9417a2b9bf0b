// `pkgtorrent serve`: the HTTP torrent service (pkgtorrent-service(8)), a
// thin node:http wrapper over the core. This module only reads flags, starts
// one server or a cluster of them (supervisor.ts), and stops on SIGINT/SIGTERM.
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { camel, type Context } from '../cli/context.js';
import { nodeCluster, stopRequested, supervise, type ClusterEnv } from '../cli/supervisor.js';
import type { SettingKey } from '../core/config.js';
import { startServer } from '../service/server.js';

const USAGE = `
Answers /<prefix>/<service name>/digest/<sha1> (the yum-torrent client),
/<prefix>/<service name>/simple/<path or glob> and .../nullfile/<size>_<n>.
Prints "pkgtorrent: serving URL" on stderr when ready, then one access log
line per request. SIGINT or SIGTERM stops it; requests in flight get 10 s.

Examples:
  pkgtorrent serve --root /srv/mirror --trackers /etc/pkgtorrent/trackers
  pkgtorrent serve --root /srv/mirror --files --host 0.0.0.0 --port 8080
  curl -o big.iso.torrent http://mirror:8080/pub/torrent_service/simple/pub/isos/big.iso`;

// The launcher a cluster worker runs: the same binary and arguments.
const BIN = fileURLToPath(new URL('../../bin/pkgtorrent', import.meta.url));

/** Settings that serve also takes as its own flags, named as the settings. */
const SERVE_SETTINGS = [
  'host',
  'port',
  'base-url',
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
] as const satisfies readonly SettingKey[];

export function register(program: Command, ctx: Context, clusterEnv: ClusterEnv = nodeCluster): Command {
  return program
    .command('serve')
    .description('run the HTTP torrent service')
    .option('--host <addr>', 'address to listen on (default 127.0.0.1)')
    .option('--port <n>', 'port to listen on, 0 for any free one (default 8080)')
    .option('--base-url <url>', 'scheme and host of web-seed URLs (default: from the request Host)')
    .option('--trust-proxy', 'honour X-Forwarded-Proto and X-Forwarded-Host')
    .option('--files', 'also serve the files under the root (GET/HEAD, Range)')
    .option('--workers <n>', 'server processes (node:cluster, default 1)')
    .addOption(new Option('-j, --jobs <n>', 'hash worker threads per process (default: cores / workers)'))
    .option('--service-name <name>', 'path segment routing to the service (default torrent_service)')
    .option('--trackers-interval <duration>', 'how often to look for a changed trackers file (default 60s)')
    .option('--max-body <size>', 'largest POST body (default 1M)')
    .option('--max-paths <n>', 'most paths in one request (default 5000)')
    .option('--max-glob-matches <n>', 'most files a simple-mode glob may match (default 5000)')
    .option('--queue-limit <n>', 'most distinct torrents one process builds at once; one more is 503 (default 64)')
    .option('--request-timeout <duration>', 'longest a request may take (default 120s)')
    .option(
      '--revalidate <duration>',
      "let a cached torrent's stat check of its files hold this long for GETs, as nginx's open_file_cache_valid (default 1s; 0: check on every request, so a replaced package never yields its old torrent)",
    )
    .addHelpText('after', USAGE)
    .action(async (opts: Record<string, string | boolean | undefined>, cmd: Command) => {
      const link = clusterEnv.link;
      try {
        await serve(ctx, cmd, opts, clusterEnv);
      } finally {
        // A worker's channel would keep it alive, also after a failed start.
        link?.disconnect();
      }
    });
}

async function serve(ctx: Context, cmd: Command, opts: Record<string, string | boolean | undefined>, clusterEnv: ClusterEnv): Promise<void> {
  const flags = Object.fromEntries(SERVE_SETTINGS.map((key) => [key, opts[camel(key)]]));
  const s = (await ctx.resolve(cmd, flags)).values;
  const root = await ctx.root(cmd);
  const cacheDir = await ctx.cacheDir(cmd);
  const signal = ctx.env.signal;
  const stderr = ctx.env.stderr;
  const log = (line: string) => stderr.write(`pkgtorrent: ${line}\n`);
  const link = clusterEnv.link;

  if (s.workers > 1 && !link) {
    const vars = Object.fromEntries(Object.entries(ctx.env.vars).filter(([, v]) => v !== undefined)) as Record<string, string>;
    await supervise({
      cluster: clusterEnv.primary(BIN, ctx.env.argv, vars),
      workers: s.workers,
      signal,
      log,
      onListening: (addr) => {
        const host = addr.addressType === 6 ? `[${addr.address}]` : addr.address;
        log(`serving http://${host}:${addr.port}/ (root ${root.dir}, ${s.workers} workers)`);
      },
    });
    return;
  }

  const server = await startServer({
    root,
    cacheDir,
    trackersFile: s.trackers,
    trackersIntervalMs: s['trackers-interval'],
    pieceLength: s['piece-length'],
    serviceName: s['service-name'],
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
    log,
    accessLog: (line) => stderr.write(line),
  });
  if (!link) log(`serving ${server.url}/ (root ${root.dir})`);
  // A cluster worker also stops when the primary says so (a second signal would kill it at once).
  await stopRequested(signal, link);
  await server.close();
}
