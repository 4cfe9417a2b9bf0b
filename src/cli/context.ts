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
  ['piece-length', '--piece-length <size>', 'piece length: bytes with optional K/M suffix (256K, 1M), power of two, 16K to 256M; make also takes N (2^N) and auto (default 1M; make: 256K)'],
  ['config', '--config <file>', 'config file (default /etc/pkgtorrent.conf if present)'],
];

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
    const opts = cmd.optsWithGlobals() as Record<string, string | undefined>;
    const flags: Record<string, string | number | boolean> = {};
    for (const [key] of GLOBAL_FLAGS) {
      const v = opts[camel(key)];
      if (v !== undefined) flags[key] = v;
    }
    Object.assign(flags, Object.fromEntries(Object.entries(extra).filter(([, v]) => v !== undefined)));
    // Like every path flag, --config is relative to the command's cwd.
    if (typeof flags.config === 'string') flags.config = resolve(this.env.cwd, flags.config);
    const s = await resolveSettings(flags, this.env.vars, this.env.defaultConfigFile);
    // Paths from flags are relative to the command's cwd, not the process's.
    s.values.root = resolve(this.env.cwd, s.values.root);
    s.values['cache-dir'] = resolve(this.env.cwd, s.values['cache-dir']);
    s.values.trackers = resolve(this.env.cwd, s.values.trackers);
    this.settings = s;
    return s;
  }

  async root(cmd: Command): Promise<MirrorRoot> {
    return MirrorRoot.open((await this.resolve(cmd)).values.root);
  }

  async cacheDir(cmd: Command): Promise<string> {
    const s = await this.resolve(cmd);
    return openCacheDir(s.values['cache-dir'], s.sources['cache-dir'] === 'default', this.env.vars, (m) => this.warn(m));
  }
}

/** Commander option parser for repeatable options: collects every value. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}
