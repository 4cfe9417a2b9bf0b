// What every command gets: the environment, output helpers and the shared
// settings, resolved once from the global flags.
import { resolve } from 'node:path';
import { Option, type CommandUnknownOpts } from '@commander-js/extra-typings';
import { DEFAULT_CONFIG_FILE, type ResolvedSettings, type SettingKey } from '../core/config.js';
import { resolveSettings } from '../core/settings-resolve.js';
import type { Logger } from 'pino';
import { settingFlags } from './setting-options.js';
// The root and the cache dir are loaded when a command asks for them: make's
// default layout uses neither, and they pull in the cache's modules.
import type { CacheDir } from '../core/cache-dir.js';
import type { MirrorRoot } from '../core/root.js';
import type { Env } from './env.js';

/** Settings every command takes as global flags (their options come from the table), in --help order. */
export const GLOBAL_SETTINGS = ['root', 'cache-dir', 'trackers', 'allow-outside', 'dotfiles', 'piece-length'] as const satisfies readonly SettingKey[];

/** --config is no setting (a config file cannot name another one), so it has its own option. */
export function configOption(): Option<'--config <file>'> {
  return new Option('--config <file>', `config file (default: ${DEFAULT_CONFIG_FILE} if present)`);
}

// Commands that can work from a cache they cannot write: serve answers hits
// from it and builds the rest in memory. hash and cache clean exist to write
// it, and make falls back to a user's own cache like any shell tool.
const READ_ONLY_CACHE_OK = new Set(['serve']);

export class Context {
  /** Set by a command whose work failed in part; a thrown error overrides it. */
  exitCode = 0;
  private settings: ResolvedSettings | null = null;
  private warned = new Set<string>();
  private json: Logger | null = null;

  constructor(readonly env: Env) {}

  out(line: string): void {
    this.env.stdout.write(line + '\n');
  }

  /** One line on stderr; the same warning is printed once per run. */
  warn(line: string): void {
    if (this.warned.has(line)) return;
    this.warned.add(line);
    this.message(line, 'warn');
  }

  /**
   * A message of a long-running command (serve, proxy) on stderr: a
   * "pkgtorrent: " line, or after `logAsJson()` one JSON object, so that
   * with --log-format json every line the process writes parses.
   */
  message(line: string, level: 'info' | 'warn' = 'info'): void {
    if (this.json) this.json[level](line);
    else this.env.stderr.write(`pkgtorrent: ${line}\n`);
  }

  /**
   * From now on, messages and warnings are JSON objects (--log-format json).
   * pino is loaded only then: it adds some 30 ms to a command's start.
   */
  async logAsJson(): Promise<void> {
    const { jsonLogger } = await import('../core/json-log.js');
    this.json ??= jsonLogger((text) => this.env.stderr.write(text));
  }

  /**
   * The settings, from the global flags of the program with `extra`, a
   * command's own flags of settings, in place of any of the same name.
   * Resolved once per run: every later call gets the same settings, so one
   * that brings flags of its own would silently lose them and is an error.
   */
  async resolve(cmd: AnyCommand, extra: Partial<Record<SettingKey, string | number | boolean | undefined>> = {}): Promise<ResolvedSettings> {
    const given = Object.entries(extra).filter(([, v]) => v !== undefined);
    if (this.settings) {
      if (given.length) throw new Error(`settings resolved before ${given.map(([k]) => `--${k}`).join(', ')} was given`);
      return this.settings;
    }
    const opts = cmd.optsWithGlobals() as Record<string, unknown>;
    const flags: Record<string, string | number | boolean> = { ...settingFlags(opts, GLOBAL_SETTINGS), ...Object.fromEntries(given) };
    if (typeof opts.config === 'string') flags.config = opts.config;
    // Like every path flag, --config is relative to the command's cwd.
    if (typeof flags.config === 'string') flags.config = resolve(this.env.cwd, flags.config);
    const s = await resolveSettings(flags, this.env.vars, this.env.defaultConfigFile);
    // Paths from flags are relative to the command's cwd, not the process's.
    s.values.root = resolve(this.env.cwd, s.values.root);
    s.values['cache-dir'] = resolve(this.env.cwd, s.values['cache-dir']);
    s.values.trackers = resolve(this.env.cwd, s.values.trackers);
    s.values['allow-outside'] = s.values['allow-outside'].map((d) => resolve(this.env.cwd, d));
    this.settings = s;
    return s;
  }

  async root(cmd: AnyCommand): Promise<MirrorRoot> {
    const s = (await this.resolve(cmd)).values;
    const { MirrorRoot } = await import('../core/root.js');
    return MirrorRoot.open(s.root, { allowOutside: s['allow-outside'], dotfiles: s.dotfiles });
  }

  async cacheDir(cmd: AnyCommand): Promise<string> {
    return (await this.openCacheDir(cmd)).dir;
  }

  /** The cache dir with what opening it found (whether it can be written), for serve's CacheWrites. */
  async openCacheDir(cmd: AnyCommand): Promise<CacheDir> {
    const s = await this.resolve(cmd);
    const readOnlyOk = READ_ONLY_CACHE_OK.has(cmd.name());
    const { openCacheDir } = await import('../core/cache-dir.js');
    return openCacheDir(s.values['cache-dir'], s.sources['cache-dir'] === 'default', this.env.vars, (m) => this.warn(m), { readOnlyOk });
  }
}

/** Any command, whatever options and arguments its type has inferred. */
export type AnyCommand = CommandUnknownOpts;
