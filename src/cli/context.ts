// What every command gets: the environment, output helpers and the shared
// settings, resolved once from the global flags.
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { resolveSettings, type ResolvedSettings, type SettingKey } from '../core/config.js';
import { openCacheDir } from '../core/cache-dir.js';
import { MirrorRoot } from '../core/root.js';
import type { Env } from './env.js';

// Global flags, named as their settings.
export const GLOBAL_FLAGS: Array<[SettingKey | 'config', string, string]> = [
  ['root', '--root <dir>', 'mirror document root (default: current directory)'],
  ['cache-dir', '--cache-dir <dir>', 'cache dir (default /var/cache/torrent_service)'],
  ['trackers', '--trackers <file>', 'trackers file (default /var/lib/torrent_service/trackers)'],
  ['allow-outside', '--allow-outside <dir>', 'a tree outside the root that symbolic links under it may lead to (repeatable)'],
  ['dotfiles', '--dotfiles', 'hash and serve dot-files and dot-directories too'],
  ['piece-length', '--piece-length <size>', 'piece length: bytes with optional K/M suffix (256K, 1M), power of two, 16K to 256M; make also takes N (2^N) and auto (default 1M; make: 256K)'],
  ['config', '--config <file>', 'config file (default /etc/pkgtorrent.conf if present)'],
];

// Commands that can work from a cache they cannot write: serve answers hits
// from it and builds the rest in memory. hash and cache clean exist to write
// it, and make falls back to a user's own cache like any shell tool.
const READ_ONLY_CACHE_OK = new Set(['serve']);

export class Context {
  /** Set by a command whose work failed in part; a thrown error overrides it. */
  exitCode = 0;
  private settings: ResolvedSettings | null = null;
  private warned = new Set<string>();

  constructor(readonly env: Env) {}

  out(line: string): void {
    this.env.stdout.write(line + '\n');
  }

  /** One line on stderr; the same warning is printed once per run. */
  warn(line: string): void {
    if (this.warned.has(line)) return;
    this.warned.add(line);
    this.env.stderr.write(`pkgtorrent: ${line}\n`);
  }

  /** Global flags of the program, with a command's own flags of the same name. */
  async resolve(cmd: Command, extra: Partial<Record<SettingKey, string | number | boolean>> = {}): Promise<ResolvedSettings> {
    if (this.settings) return this.settings;
    const opts = cmd.optsWithGlobals() as Record<string, string | string[] | boolean | undefined>;
    const flags: Record<string, string | number | boolean> = {};
    for (const [key] of GLOBAL_FLAGS) {
      const v = opts[camel(key)];
      // A repeated flag is a list, spelt as the config file spells one.
      if (v !== undefined) flags[key] = Array.isArray(v) ? v.join(':') : v;
    }
    Object.assign(flags, Object.fromEntries(Object.entries(extra).filter(([, v]) => v !== undefined)));
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

  async root(cmd: Command): Promise<MirrorRoot> {
    const s = (await this.resolve(cmd)).values;
    return MirrorRoot.open(s.root, { allowOutside: s['allow-outside'], dotfiles: s.dotfiles });
  }

  async cacheDir(cmd: Command): Promise<string> {
    const s = await this.resolve(cmd);
    const readOnlyOk = READ_ONLY_CACHE_OK.has(cmd.name());
    return openCacheDir(s.values['cache-dir'], s.sources['cache-dir'] === 'default', this.env.vars, (m) => this.warn(m), { readOnlyOk });
  }
}

/** Commander option parser for repeatable options: collects every value. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}
