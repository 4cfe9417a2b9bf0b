// Settings shared by every command: one table of definitions, resolved from
// flag > environment (PKGTORRENT_*) > config file > default, remembering
// where each value came from so `pkgtorrent config` can say.
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { PkgError } from './errors.js';
import { DEFAULT_PIECE_LENGTH, parseDuration, parsePieceLength, parseSize } from './size.js';
import { DEFAULT_SERVICE_NAME } from './service-torrent.js';

export const DEFAULT_CONFIG_FILE = '/etc/pkgtorrent.conf';

function parseBool(text: string): boolean {
  if (/^(1|true|yes|on)$/i.test(text)) return true;
  if (/^(0|false|no|off)$/i.test(text)) return false;
  throw new PkgError('usage', `expected yes or no, got '${text}'`);
}

function parseInteger(min: number, max: number) {
  return (text: string): number => {
    if (!/^\d+$/.test(text.trim())) throw new PkgError('usage', `expected a whole number, got '${text}'`);
    const n = Number(text);
    if (n < min || n > max) throw new PkgError('usage', `expected a number from ${min} to ${max}, got '${text}'`);
    return n;
  };
}

const str = (text: string): string => text;

/** Every setting: its key in the config file and the parser its values go through. */
export const SETTINGS = {
  root: { parse: str, default: (): string => '.', help: 'mirror document root' },
  'cache-dir': { parse: str, default: (): string => '/var/cache/torrent_service', help: 'cache directory' },
  trackers: { parse: str, default: (): string => '/var/lib/torrent_service/trackers', help: 'trackers file' },
  'piece-length': { parse: (t: string) => parsePieceLength(t), default: (): number => DEFAULT_PIECE_LENGTH, help: 'piece length of service torrents' },
  'service-name': {
    parse: (t: string) => {
      if (!/^[A-Za-z0-9._~-]+$/.test(t)) throw new PkgError('usage', `invalid service name '${t}'`);
      return t;
    },
    default: (): string => DEFAULT_SERVICE_NAME,
    help: 'path segment that routes to the service',
  },
  host: { parse: str, default: (): string => '127.0.0.1', help: 'address serve listens on' },
  port: { parse: parseInteger(0, 65535), default: (): number => 8080, help: 'port serve listens on' },
  'base-url': {
    parse: (t: string) => {
      let u: URL;
      try {
        u = new URL(t);
      } catch {
        throw new PkgError('usage', `invalid base URL '${t}'`);
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new PkgError('usage', `invalid base URL '${t}': use http or https`);
      return t.replace(/\/+$/, '');
    },
    default: (): string | undefined => undefined,
    help: 'scheme and host of web-seed URLs (default: from the request)',
  },
  'trust-proxy': { parse: parseBool, default: (): boolean => false, help: 'honour X-Forwarded-Proto/Host' },
  files: { parse: parseBool, default: (): boolean => false, help: 'serve the files under the root too' },
  workers: { parse: parseInteger(1, 256), default: (): number => 1, help: 'serve processes (node:cluster)' },
  jobs: { parse: parseInteger(1, 1024), default: (): number => 0, help: 'hash worker threads (0: one per core)' },
  'trackers-interval': { parse: (t: string) => parseDuration(t, 'interval'), default: (): number => 60_000, help: 'how often serve looks for a changed trackers file' },
  'max-body': { parse: (t: string) => parseSize(t, 'body size'), default: (): number => 1024 * 1024, help: 'largest POST body serve accepts' },
  'max-paths': { parse: parseInteger(1, 1_000_000), default: (): number => 5000, help: 'most paths in one request' },
  'max-glob-matches': { parse: parseInteger(1, 1_000_000), default: (): number => 5000, help: 'most files one simple-mode glob may match' },
  'queue-limit': { parse: parseInteger(1, 1_000_000), default: (): number => 64, help: 'most torrent builds waiting for hashing before 503' },
  'request-timeout': { parse: (t: string) => parseDuration(t, 'timeout'), default: (): number => 120_000, help: 'longest a request may take' },
} as const;

export type SettingKey = keyof typeof SETTINGS;
export type Settings = { [K in SettingKey]: ReturnType<(typeof SETTINGS)[K]['default']> };
export type Source = 'flag' | 'env' | 'file' | 'default';

export interface ResolvedSettings {
  values: Settings;
  sources: Record<SettingKey, Source>;
  /** The config file read, if any. */
  configFile: string | null;
}

export function envName(key: SettingKey): string {
  return `PKGTORRENT_${key.toUpperCase().replace(/-/g, '_')}`;
}

function isKey(k: string): k is SettingKey {
  return Object.hasOwn(SETTINGS, k);
}

/** Parses a config file: `key = value` lines, `#` comments, blank lines. */
export function parseConfigFile(text: string, file: string): Partial<Record<SettingKey, string>> {
  const out: Partial<Record<SettingKey, string>> = {};
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(.*)$/.exec(line);
    if (!m) throw new PkgError('usage', `${file}:${i + 1}: expected 'key = value'`);
    const key = m[1]!.toLowerCase().replace(/_/g, '-');
    if (!isKey(key)) throw new PkgError('usage', `${file}:${i + 1}: unknown setting '${m[1]}'`);
    let value = m[2]!.trim();
    if (/^".*"$/.test(value)) value = value.slice(1, -1);
    try {
      SETTINGS[key].parse(value);
    } catch (e) {
      throw new PkgError('usage', `${file}:${i + 1}: ${key}: ${(e as Error).message}`);
    }
    out[key] = value;
  });
  return out;
}

/**
 * Resolves every setting. `flags` holds values given on the command line as
 * strings (undefined when absent). The config file is `flags.config`, else
 * PKGTORRENT_CONFIG, else /etc/pkgtorrent.conf when it exists.
 */
export async function resolveSettings(
  flags: Partial<Record<SettingKey, string | boolean | number>> & { config?: string },
  env: Record<string, string | undefined>,
  defaultConfigFile = DEFAULT_CONFIG_FILE,
): Promise<ResolvedSettings> {
  const explicit = flags.config ?? env.PKGTORRENT_CONFIG;
  const configFile = explicit ?? (existsSync(defaultConfigFile) ? defaultConfigFile : null);
  let fromFile: Partial<Record<SettingKey, string>> = {};
  if (configFile) {
    let text: string;
    try {
      text = await readFile(configFile, 'utf8');
    } catch (e) {
      throw new PkgError('usage', `config file ${configFile}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : (e as Error).message}`);
    }
    fromFile = parseConfigFile(text, configFile);
  }
  const values = {} as Record<SettingKey, unknown>;
  const sources = {} as Record<SettingKey, Source>;
  for (const key of Object.keys(SETTINGS) as SettingKey[]) {
    const def = SETTINGS[key];
    const flag = flags[key];
    const fromEnv = env[envName(key)];
    if (flag !== undefined) {
      values[key] = typeof flag === 'string' ? parseWith(key, flag, `--${key}`) : flag;
      sources[key] = 'flag';
    } else if (fromEnv !== undefined && fromEnv !== '') {
      values[key] = parseWith(key, fromEnv, envName(key));
      sources[key] = 'env';
    } else if (fromFile[key] !== undefined) {
      values[key] = def.parse(fromFile[key]!);
      sources[key] = 'file';
    } else {
      values[key] = def.default();
      sources[key] = 'default';
    }
  }
  return { values: values as Settings, sources, configFile };
}

function parseWith(key: SettingKey, text: string, where: string): unknown {
  try {
    return SETTINGS[key].parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    throw new PkgError('usage', msg.startsWith('invalid') ? msg : `${where}: ${msg}`);
  }
}
