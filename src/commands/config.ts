// `pkgtorrent config`: the effective settings and where each one came from,
// so an operator can see why serve listens where it does without guessing
// which of flag, environment, config file or default won.
import { Command } from '@commander-js/extra-typings';
import { access, stat } from 'node:fs/promises';
import { constants } from 'node:fs';
import { dirname } from 'node:path';
import type { AnyCommand, Context } from '../cli/context.js';
import { formatTable } from '../cli/text.js';
import { fallbackCacheDir } from '../core/cache-dir.js';
import { DEFAULT_CONFIG_FILE, envName, formatValue, settingKeys, SETTINGS, shownDefault, type ResolvedSettings, type SettingKey } from '../core/config.js';

const USAGE = `
Every setting can be given as a flag, as an environment variable
PKGTORRENT_<NAME> (PKGTORRENT_CACHE_DIR for cache-dir), or in the config file
as 'name = value'; the first of these wins, then the default. The config file
is --config, else PKGTORRENT_CONFIG (empty: none), else /etc/pkgtorrent.conf
when it exists. A bad config file is reported with its file, line and key.

Examples:
  pkgtorrent config
  PKGTORRENT_PORT=9000 pkgtorrent --config ./test.conf config --json`;

export interface SettingReport {
  value: unknown;
  /** The value as the config file would spell it. */
  text: string;
  source: 'flag' | 'env' | 'file' | 'default';
  /** Where exactly: "--root", "PKGTORRENT_ROOT", "/etc/pkgtorrent.conf:3", "default". */
  origin: string;
  help: string;
}

export interface ConfigReport {
  configFile: string | null;
  settings: Record<SettingKey, SettingReport>;
  /** Set when the default cache dir cannot be used and commands fall back. */
  cacheDirFallback: string | null;
}

export function register(program: Command, ctx: Context): AnyCommand {
  return program
    .command('config')
    .description('show the effective settings and where each came from')
    .option('--json', 'print the settings as JSON')
    .addHelpText('after', USAGE)
    .action(async (opts, cmd) => {
      const s = await ctx.resolve(cmd);
      const report = await configReport(s, ctx.env.vars);
      if (opts.json) {
        ctx.out(JSON.stringify(report));
        return;
      }
      const explicitNone = s.configFile === null && ctx.env.vars.PKGTORRENT_CONFIG === '';
      const defaultFile = ctx.env.defaultConfigFile ?? DEFAULT_CONFIG_FILE;
      ctx.out(`config file: ${s.configFile ?? (explicitNone ? 'none (PKGTORRENT_CONFIG is empty)' : `none (${defaultFile} does not exist)`)}`);
      for (const line of table(report)) ctx.out(line);
      if (report.cacheDirFallback) {
        ctx.out(`cache dir ${s.values['cache-dir']} is not writable: commands will use ${report.cacheDirFallback}`);
      }
    });
}

export async function configReport(s: ResolvedSettings, vars: Record<string, string | undefined>): Promise<ConfigReport> {
  const settings = {} as Record<SettingKey, SettingReport>;
  for (const key of settingKeys()) {
    const source = s.sources[key];
    const origin =
      source === 'flag' ? `--${key}` : source === 'env' ? envName(key) : source === 'file' ? `${s.configFile}:${s.fileLines[key]}` : 'default';
    const value = s.values[key] ?? null;
    // An empty default says what it means ("any", "none") as --help does, not a blank.
    const text = formatValue(key, value) || (source === 'default' ? shownDefault(key) : '');
    settings[key] = { value, text, source, origin, help: SETTINGS[key].help };
  }
  const dir = s.values['cache-dir'];
  const cacheDirFallback = s.sources['cache-dir'] === 'default' && !(await couldWrite(dir)) ? fallbackCacheDir(vars) : null;
  return { configFile: s.configFile, settings, cacheDirFallback };
}

/**
 * Would a command be able to create and write this directory? Answered
 * without creating anything: `config` only looks.
 */
async function couldWrite(dir: string): Promise<boolean> {
  for (let d = dir; ; d = dirname(d)) {
    try {
      if (!(await stat(d)).isDirectory()) return false;
      await access(d, constants.W_OK | constants.X_OK);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(d) === d) return false;
    }
  }
}

function table(r: ConfigReport): string[] {
  const rows = [
    ['SETTING', 'VALUE', 'SOURCE'],
    ...settingKeys().map((k) => {
      const x = r.settings[k];
      const source = x.source === 'default' ? 'default' : x.source === 'file' ? `file ${x.origin}` : `${x.source} ${x.origin}`;
      return [k, x.value === null ? '(unset)' : x.text, source];
    }),
  ];
  return formatTable(rows);
}
