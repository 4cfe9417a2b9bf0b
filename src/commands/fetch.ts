// `pkgtorrent fetch`: downloads a set of files from a mirror running the
// service, over BitTorrent (digest mode, as yum-torrent asked: the libtorrent
// engine, peers first, the mirror's HTTP piece by piece for the rest), each
// file falling back to plain HTTP. This module reads flags and prints results.
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from '@commander-js/extra-typings';
import type { AnyCommand, Context } from '../cli/context.js';
import { settingFlags, settingOption } from '../cli/setting-options.js';
import type { SettingKey } from '../core/config.js';
import { usageError } from '../core/errors.js';
import { fetchSet } from '../proxy/fetch-set.js';

const USAGE = `
PATHs are URL paths on the mirror (/<prefix>/...); with none, one per line
on stdin. Each file lands at DIR/<path>. Prints "<bittorrent|direct|failed>
<bytes> <path>" per file, then on stderr where the bytes came from: peers,
and the mirror (its BitTorrent seeder, its HTTP); exit 1 when any file failed.
BitTorrent needs python3-libtorrent; --http-only goes without it.

Example:
  pkgtorrent fetch --base http://mirror -o pkgs /pub/el9/a.rpm /pub/el9/b.rpm`;

const FLAGS = ['service-name', 'stall-timeout', 'bt-port'] as const satisfies readonly SettingKey[];

async function readStdin(ctx: Context): Promise<string> {
  const stdin = ctx.env.stdin;
  if (!stdin) return '';
  const chunks: Buffer[] = [];
  for await (const c of stdin as AsyncIterable<Buffer>) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks).toString('utf8');
}

/** Tests only: the engine program to run instead of bin/pkgtorrent-bt, and several peers on one address. */
export interface FetchTesting {
  engineProgram?: string;
  btLoopback?: boolean;
}

export function register(program: Command, ctx: Context, testing: FetchTesting = {}): AnyCommand {
  return program
    .command('fetch')
    .description('download files from a mirror over BitTorrent (digest mode), falling back to HTTP')
    .argument('[path...]', 'URL paths on the mirror (default: read from stdin)')
    .requiredOption('--base <url>', 'the mirror, scheme and host only (http://mirror) (required)')
    .requiredOption('-o, --output <dir>', 'directory to download into (required)')
    .addOption(settingOption('service-name'))
    .addOption(settingOption('stall-timeout'))
    .addOption(settingOption('bt-port'))
    .option('--http-only', 'every file over plain HTTP: no BitTorrent (no python3-libtorrent needed)')
    .addHelpText('after', USAGE)
    .action(async (args, opts, cmd) => {
      const s = (await ctx.resolve(cmd, settingFlags(opts, FLAGS))).values;
      let base: URL;
      try {
        base = new URL(opts.base);
      } catch {
        throw usageError(`invalid --base '${opts.base}': expected http://host`);
      }
      if (base.protocol !== 'http:' && base.protocol !== 'https:') throw usageError(`invalid --base '${opts.base}': use http or https`);
      // The paths carry the prefix (/debian/pool/...): a base with a path would double it.
      if (base.pathname.replace(/\/+$/, '') !== '' || base.search || base.hash) {
        throw usageError(`invalid --base '${opts.base}': scheme and host only (${base.protocol}//${base.host}); the paths start with the prefix (/debian/...)`);
      }
      const outDir = resolve(ctx.env.cwd, opts.output);
      const outStat = await stat(outDir).catch(() => null);
      if (outStat && !outStat.isDirectory()) throw usageError(`-o ${opts.output}: not a directory`);
      const paths = args.length ? args : (await readStdin(ctx)).split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
      if (paths.length === 0) throw usageError('no paths: give them as arguments or one per line on stdin');
      const { files: results, from } = await fetchSet({
        base: opts.base.replace(/\/+$/, ''),
        outDir,
        paths,
        serviceName: s['service-name'],
        stallMs: s['stall-timeout'],
        btPort: s['bt-port'],
        httpOnly: opts.httpOnly === true,
        signal: ctx.env.signal,
        ...testing,
        log: (line) => ctx.warn(line),
      });
      for (const r of results) ctx.out(`${r.how} ${r.bytes} ${r.path}${r.error ? ` (${r.error})` : ''}`);
      const failed = results.filter((r) => r.how === 'failed').length;
      const bt = results.filter((r) => r.how === 'bittorrent').length;
      ctx.warn(
        `fetched ${results.length - failed} of ${results.length} files (${bt} over BitTorrent): ` +
          `peers=${from.peers} mirror=${from.seeder + from.http} (seeder=${from.seeder} http=${from.http})`,
      );
      if (failed) ctx.exitCode = 1;
    });
}
