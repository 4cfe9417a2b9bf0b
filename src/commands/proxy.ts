// `pkgtorrent proxy`: the local proxy that turns package downloads into
// BitTorrent downloads whose web seed is the mirror (pkgtorrent-proxy(8)).
// This module only reads flags, starts the proxy and stops it on a signal.
import type { Command } from '@commander-js/extra-typings';
import type { AnyCommand, Context } from '../cli/context.js';
import { settingFlags, settingOption } from '../cli/setting-options.js';
import type { SettingKey } from '../core/config.js';
import { openStoreDir } from '../core/cache-dir.js';
import { startProxy } from '../proxy/server.js';

const USAGE = `
Package downloads (--package-patterns, at least --min-size) go through
BitTorrent when the mirror runs the torrent service: peers first, the
mirror's HTTP for what they cannot give; everything else goes straight to
the mirror. Needs python3-libtorrent (Debian, Fedora). Prints
"pkgtorrent: proxy on URL" on stderr when ready, then one log line per request
(--log-format json: one JSON object per line).

Examples:
  pkgtorrent proxy --store /var/cache/pkgtorrent-proxy
  apt:    Acquire::http::Proxy "http://127.0.0.1:3142";
  dnf:    proxy=http://127.0.0.1:3142
  pacman, zypper: http_proxy=http://127.0.0.1:3142
  pkgtorrent proxy --mirror fedora=https://dl.fedoraproject.org/pub/fedora`;

/** The proxy's settings, each its own flag (--host and --port are proxy-host and proxy-port). */
const KEYS = [
  'proxy-host',
  'proxy-port',
  'mirror',
  'allow-from',
  'allow-host',
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
  'metrics-listen',
  'log-format',
] as const satisfies readonly SettingKey[];

export function register(program: Command, ctx: Context): AnyCommand {
  const proxy = program.command('proxy').description('run the local package proxy that downloads packages over BitTorrent');
  for (const key of KEYS) proxy.addOption(settingOption(key));
  return proxy.addHelpText('after', USAGE).action(async (opts: Record<string, unknown>, cmd: AnyCommand) => {
      const resolved = await ctx.resolve(cmd, settingFlags(opts, KEYS));
      const s = resolved.values;
      const stderr = ctx.env.stderr;
      if (s['log-format'] === 'json') await ctx.logAsJson();
      const store = await openStoreDir(s.store, resolved.sources.store === 'default', ctx.env.vars, (m) => ctx.warn(m));
      const running = await startProxy({
        host: s['proxy-host'],
        port: s['proxy-port'],
        mirrors: [...s.mirror],
        patterns: [...s['package-patterns']],
        minSize: s['min-size'],
        stallMs: s['stall-timeout'],
        lookupTimeoutMs: s['lookup-timeout'],
        noServiceTtlMs: s['service-miss-ttl'],
        serviceName: s['service-name'],
        store,
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
        log: (line) => ctx.message(line),
        accessLog: (line) => stderr.write(line),
        logFormat: s['log-format'],
        metricsListen: s['metrics-listen'],
      });
      if (running.metricsUrl) ctx.message(`metrics on ${running.metricsUrl}/metrics`);
      const maps = [...s.mirror].map((m) => m.replace('=', ' -> ')).join(', ');
      ctx.message(`proxy on ${running.url}/ (store ${store}${maps ? `; mirrors ${maps}` : ''})`);
      const signal = ctx.env.signal;
      await new Promise<void>((resolve) => {
        if (signal?.aborted) return resolve();
        signal?.addEventListener('abort', () => resolve(), { once: true });
      });
      await running.close();
      // Stopped by a signal: the shell's status for it (130 SIGINT, 143 SIGTERM), as documented.
      if (signal?.aborted) ctx.exitCode = signal.reason === 'SIGTERM' ? 143 : 130;
    });
}
