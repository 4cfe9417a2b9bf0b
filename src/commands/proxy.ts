// `pkgtorrent proxy`: the local proxy that turns package downloads into
// BitTorrent downloads whose web seed is the mirror (pkgtorrent-proxy(8)).
// This module only reads flags, starts the proxy and stops it on a signal.
import type { Command } from 'commander';
import { camel, collect, type Context } from '../cli/context.js';
import type { SettingKey } from '../core/config.js';
import { startProxy } from '../proxy/server.js';

const USAGE = `
Package downloads (--package-patterns, at least --min-size) go through
BitTorrent with the mirror as web seed when the mirror runs the torrent
service; everything else goes straight to the mirror. Prints
"pkgtorrent: proxy on URL" on stderr when ready, then one log line per request.

Examples:
  pkgtorrent proxy --store /var/cache/pkgtorrent-proxy
  apt:    Acquire::http::Proxy "http://127.0.0.1:3142";
  dnf:    proxy=http://127.0.0.1:3142
  pacman, zypper: http_proxy=http://127.0.0.1:3142
  pkgtorrent proxy --mirror fedora=https://dl.fedoraproject.org/pub/fedora`;

const LIST_FLAGS = { mirror: 'mirror', allowFrom: 'allow-from', allowHost: 'allow-host' } as const;
const FLAGS = [
  'package-patterns',
  'min-size',
  'stall-timeout',
  'lookup-timeout',
  'service-miss-ttl',
  'service-name',
  'store',
  'store-size',
  'seed-time',
  'seed-ratio',
  'seed-max-torrents',
  'upload-limit',
  'bt-port',
  'dht',
  'lpd',
  'pex',
  'aria2c',
] as const satisfies readonly SettingKey[];

export function register(program: Command, ctx: Context): Command {
  return program
    .command('proxy')
    .description('run the local package proxy that downloads packages over BitTorrent')
    .option('--host <addr>', 'address to listen on (default 127.0.0.1)')
    .option('--port <n>', 'port to listen on, 0 for any free one (default 3142)')
    .option('--mirror <name=url>', 'serve /NAME/<path> from URL/<path> (repeatable)', collect)
    .option('--allow-from <cidr>', 'clients allowed when not listening on loopback (repeatable)', collect)
    .option('--allow-host <host>', 'only proxy to this host (repeatable; default any)', collect)
    .option('--package-patterns <globs>', 'comma-separated file names tried over BitTorrent (default *.rpm,*.drpm,*.deb,*.udeb,*.ddeb,*.pkg.tar.*,*.apk)')
    .option('--min-size <size>', 'smaller packages go direct (default 1M)')
    .option('--stall-timeout <duration>', 'no BitTorrent progress this long: finish from the mirror (default 5s)')
    .option('--lookup-timeout <duration>', 'longest wait for a torrent from the service (default 3s)')
    .option('--service-miss-ttl <duration>', 'how long a mirror prefix without a service goes direct (default 10m)')
    .option('--service-name <name>', 'path segment of the service on the mirror (default torrent_service)')
    .option('--store <dir>', 'completed packages kept and seeded (default /var/cache/pkgtorrent-proxy)')
    .option('--store-size <size>', 'most bytes in the store (default 10G)')
    .option('--seed-time <duration>', 'seed each package this long (default 1h)')
    .option('--seed-ratio <ratio>', 'or until this upload ratio (default 0: time only)')
    .option('--seed-max-torrents <n>', 'most packages seeded at once (default 100)')
    .option('--upload-limit <size>', 'upload bytes per second, all torrents (default 0: unlimited)')
    .option('--bt-port <ports>', 'TCP port(s) for peers (default 6881-6999)')
    .option('--dht <yes|no>', 'find peers through the DHT (default no)')
    .option('--lpd <yes|no>', 'find peers on the local network, BEP 14 (default no)')
    .option('--pex <yes|no>', 'exchange peers with peers (default no)')
    .option('--aria2c <path>', 'the aria2c binary (default aria2c)')
    .addHelpText('after', USAGE)
    .action(async (opts: Record<string, string | string[] | undefined>, cmd: Command) => {
      const flags: Partial<Record<SettingKey, string>> = {};
      for (const key of FLAGS) if (opts[camel(key)] !== undefined) flags[key] = String(opts[camel(key)]);
      for (const [opt, key] of Object.entries(LIST_FLAGS)) if (opts[opt]) flags[key] = (opts[opt] as string[]).join(',');
      if (opts.host !== undefined) flags['proxy-host'] = String(opts.host);
      if (opts.port !== undefined) flags['proxy-port'] = String(opts.port);
      const s = (await ctx.resolve(cmd, flags)).values;
      const stderr = ctx.env.stderr;
      const proxy = await startProxy({
        host: s['proxy-host'],
        port: s['proxy-port'],
        mirrors: [...s.mirror],
        patterns: [...s['package-patterns']],
        minSize: s['min-size'],
        stallMs: s['stall-timeout'],
        lookupTimeoutMs: s['lookup-timeout'],
        noServiceTtlMs: s['service-miss-ttl'],
        serviceName: s['service-name'],
        store: s.store,
        storeSize: s['store-size'],
        seedTimeMs: s['seed-time'],
        seedRatio: s['seed-ratio'],
        seedMaxTorrents: s['seed-max-torrents'],
        uploadLimit: s['upload-limit'],
        btPort: s['bt-port'],
        dht: s.dht,
        lpd: s.lpd,
        pex: s.pex,
        allowFrom: [...s['allow-from']],
        allowHosts: [...s['allow-host']],
        aria2c: s.aria2c,
        log: (line) => stderr.write(`pkgtorrent: ${line}\n`),
        accessLog: (line) => stderr.write(line),
      });
      stderr.write(`pkgtorrent: proxy on ${proxy.url}/ (store ${s.store})\n`);
      const signal = ctx.env.signal;
      await new Promise<void>((resolve) => {
        if (signal?.aborted) return resolve();
        signal?.addEventListener('abort', () => resolve(), { once: true });
      });
      await proxy.close();
    });
}
