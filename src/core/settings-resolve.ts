// Resolving the settings of config.ts's table: flag > environment
// (PKGTORRENT_*) > config file > default, remembering where each value came
// from so `pkgtorrent config` can say; and reading the config file.
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { PkgError, fsError } from './errors.js';
import { DEFAULT_CONFIG_FILE, SETTINGS, envName, flagName, isKey, settingKeys, type ResolvedSettings, type SettingKey, type Settings, type Source } from './config.js';

/** The known key closest to a misspelt one, for "did you mean". */
function closestKey(word: string): SettingKey | null {
  let best: SettingKey | null = null;
  let bestDistance = 3;
  for (const key of settingKeys()) {
    const d = editDistance(word, key);
    if (d < bestDistance) [best, bestDistance] = [key, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}

export interface ConfigFileValues {
  values: Partial<Record<SettingKey, string>>;
  lines: Partial<Record<SettingKey, number>>;
}

/**
 * Parses a config file: `key = value` lines, `#` comments, blank lines. Keys
 * are the long flag names (`cache-dir`; `cache_dir` and any case also work).
 * A value may be wrapped in double or single quotes, which keep spaces at its
 * ends; a `#` after a value is part of it (paths may contain one). Every
 * error is one line naming the file, the line and the key.
 */
export function parseConfigFile(text: string, file: string): ConfigFileValues {
  const out: ConfigFileValues = { values: {}, lines: {} };
  text.split(/\r?\n/).forEach((raw, i) => {
    const at = `${file}:${i + 1}`;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(.*)$/.exec(line);
    if (!m) throw new PkgError('usage', `${at}: expected 'key = value', got '${line.length > 60 ? line.slice(0, 60) + '...' : line}'`);
    const key = m[1]!.toLowerCase().replace(/_/g, '-');
    if (!isKey(key)) {
      const near = closestKey(key);
      const hint = key === 'config' ? ' (a config file cannot name another one)' : near ? ` (did you mean '${near}'?)` : '';
      throw new PkgError('usage', `${at}: unknown setting '${m[1]}'${hint}`);
    }
    const first = out.lines[key];
    if (first !== undefined) throw new PkgError('usage', `${at}: ${key}: set twice (first on line ${first})`);
    let value = m[2]!.trim();
    if (/^"[^"]*"$|^'[^']*'$/.test(value)) value = value.slice(1, -1);
    if (value === '') throw new PkgError('usage', `${at}: ${key}: no value (remove the line to use the default)`);
    try {
      SETTINGS[key].parse(value);
    } catch (e) {
      throw new PkgError('usage', `${at}: ${key}: ${(e as Error).message}`);
    }
    out.values[key] = value;
    out.lines[key] = i + 1;
  });
  return out;
}

/**
 * Resolves every setting. `flags` holds values given on the command line as
 * strings (undefined when absent). The config file is `flags.config`, else
 * PKGTORRENT_CONFIG, else /etc/pkgtorrent.conf when it exists; an empty
 * PKGTORRENT_CONFIG means no config file at all. An empty PKGTORRENT_*
 * variable counts as unset.
 */
export async function resolveSettings(
  flags: Partial<Record<SettingKey, string | boolean | number>> & { config?: string },
  env: Record<string, string | undefined>,
  defaultConfigFile = DEFAULT_CONFIG_FILE,
): Promise<ResolvedSettings> {
  const explicit = flags.config ?? env.PKGTORRENT_CONFIG;
  const configFile = explicit === '' ? null : (explicit ?? (existsSync(defaultConfigFile) ? defaultConfigFile : null));
  let fromFile: ConfigFileValues = { values: {}, lines: {} };
  if (configFile) {
    let text: string;
    try {
      text = await readFile(configFile, 'utf8');
    } catch (e) {
      throw new PkgError('usage', `config file ${fsError(e, configFile).message}`);
    }
    fromFile = parseConfigFile(text, configFile);
  }
  const values = {} as Record<SettingKey, unknown>;
  const sources = {} as Record<SettingKey, Source>;
  const fileLines: Partial<Record<SettingKey, number>> = {};
  for (const key of settingKeys()) {
    const def = SETTINGS[key];
    const flag = flags[key];
    const fromEnv = env[envName(key)];
    // Like the config file, the environment is checked whole: a bad value
    // hidden by today's flag would surface the day the flag is dropped.
    const envValue = fromEnv !== undefined && fromEnv !== '' ? parseWith(key, fromEnv, envName(key), true) : undefined;
    if (flag !== undefined) {
      values[key] = typeof flag === 'string' ? parseWith(key, flag, flagName(key)) : flag;
      sources[key] = 'flag';
    } else if (envValue !== undefined) {
      values[key] = envValue;
      sources[key] = 'env';
    } else if (fromFile.values[key] !== undefined) {
      values[key] = def.parse(fromFile.values[key]);
      sources[key] = 'file';
      fileLines[key] = fromFile.lines[key]!;
    } else {
      values[key] = def.default();
      sources[key] = 'default';
    }
  }
  return { values: values as Settings, sources, configFile, fileLines };
}

/**
 * Parses one value. A flag's message already quotes the value the user just
 * typed ("invalid piece length '3K'"); a variable's is prefixed with its name,
 * since nothing else would tell the user where the value came from.
 */
function parseWith(key: SettingKey, text: string, where: string, alwaysName = false): unknown {
  try {
    return SETTINGS[key].parse(text);
  } catch (e) {
    const msg = (e as Error).message;
    throw new PkgError('usage', msg.startsWith('invalid') && !alwaysName ? msg : `${where}: ${msg}`);
  }
}

