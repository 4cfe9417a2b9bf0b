// `pkgtorrent serve`: the HTTP torrent service (SPEC section 3), a thin
// node:http wrapper over the core. This module only reads flags, starts one
// server or a cluster of them, and stops on SIGINT/SIGTERM.
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Command, Option } from 'commander';
import { camel, type Context } from '../cli/context.js';
import type { SettingKey } from '../core/config.js';
import { startServer } from '../service/server.js';

const USAGE = `
Answers /<prefix>/<service name>/digest/<sha1> (the yum-torrent client),
/<prefix>/<service name>/simple/<path or glob> and .../nullfile/<size>_<n>.
Prints "pkgtorrent: serving URL" on stderr when ready, then one access log
line per request. SIGINT or SIGTERM stops it after in-flight requests.

Examples:
  pkgtorrent serve --root /srv/mirror --trackers /etc/pkgtorrent/trackers
  pkgtorrent serve --root /srv/mirror --files --host 0.0.0.0 --port 8080
  curl -o big.iso.torrent http://mirror:8080/pub/torrent_service/simple/pub/isos/big.iso`;

// The launcher a cluster worker runs: the same binary and arguments.
const BIN = fileURLToPath(new URL('../../bin/pkgtorrent', import.meta.url));
const STOP_MESSAGE = 'pkgtorrent:stop';

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

export function register(program: Command, ctx: Context): Command {
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
    .option('--queue-limit <n>', 'most torrent builds at once before 503 (default 64)')
    .option('--request-timeout <duration>', 'longest a request may take (default 120s)')
    .option(
      '--revalidate <duration>',
      "let a cached torrent's stat check of its files hold this long for GETs, as nginx's open_file_cache_valid (default 1s; 0: check on every request, so a replaced package never yields its old torrent)",
    )
    .addHelpText('after', USAGE)
    .action(async (opts: Record<string, string | boolean | undefined>, cmd: Command) => {
      const flags = Object.fromEntries(SERVE_SETTINGS.map((key) => [key, opts[camel(key)]]));
      const s = (await ctx.resolve(cmd, flags)).values;
      const root = await ctx.root(cmd);
      const cacheDir = await ctx.cacheDir(cmd);
      const signal = ctx.env.signal;

      if (s.workers > 1 && cluster.isPrimary) {
        await runPrimary(ctx, s.workers, `(root ${root.dir}, ${s.workers} workers)`);
        return;
      }

      const stderr = ctx.env.stderr;
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
        log: (line) => stderr.write(`pkgtorrent: ${line}\n`),
        accessLog: (line) => stderr.write(line),
      });
      if (cluster.isPrimary) stderr.write(`pkgtorrent: serving ${server.url}/ (root ${root.dir})\n`);

      await new Promise<void>((resolve) => {
        if (signal?.aborted) return resolve();
        signal?.addEventListener('abort', () => resolve(), { once: true });
        // A cluster worker stops when the primary says so (a second signal would kill it at once).
        if (cluster.isWorker) process.on('message', (m) => m === STOP_MESSAGE && resolve());
      });
      await server.close();
      if (cluster.isWorker) process.disconnect();
    });
}

/**
 * The cluster primary: forks the workers (which share the listening socket),
 * replaces a worker that dies, prints the URL once the first one listens, and
 * on a signal asks every worker to stop and waits for them.
 */
async function runPrimary(ctx: Context, workers: number, what: string): Promise<void> {
  const stderr = ctx.env.stderr;
  let stopping = false;
  let announced = false;
  cluster.setupPrimary({ exec: BIN, args: ctx.env.argv, silent: false });
  const vars = Object.fromEntries(Object.entries(ctx.env.vars).filter(([, v]) => v !== undefined)) as Record<string, string>;
  const fork = () => cluster.fork(vars);
  cluster.on('listening', (_w, addr) => {
    if (announced) return;
    announced = true;
    const host = addr.addressType === 6 ? `[${addr.address}]` : addr.address;
    stderr.write(`pkgtorrent: serving http://${host}:${addr.port}/ ${what}\n`);
  });
  cluster.on('exit', (w, code, sig) => {
    if (stopping) return;
    stderr.write(`pkgtorrent: worker ${w.process.pid} exited (${sig ?? code}); starting another\n`);
    fork();
  });
  for (let i = 0; i < workers; i++) fork();
  await new Promise<void>((resolve) => {
    const signal = ctx.env.signal;
    if (signal?.aborted) return resolve();
    signal?.addEventListener('abort', () => resolve(), { once: true });
  });
  stopping = true;
  const all = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
  await Promise.all(
    all.map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.isDead()) return resolve();
          w.once('exit', () => resolve());
          if (w.isConnected()) w.send(STOP_MESSAGE);
        }),
    ),
  );
}
