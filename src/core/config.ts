// Settings shared by every command: one table of definitions (flag, value
// syntax, default, help), from which the command-line options, the config
// file's keys, the PKGTORRENT_* variables and `pkgtorrent config` all come.
// Resolving them (flag > environment > config file > default) is
// settings-resolve.ts.
import { PkgError } from './errors.js';
import { parseBool, parseInteger, parseList, parseMirror, parsePathList, parseRatio, str } from './setting-parsers.js';
import { DEFAULT_PIECE_LENGTH, parseDuration, parsePieceLength, parseSize } from './size.js';
import { DEFAULT_SERVICE_NAME } from './service-name.js';
import { baseUrlProblem } from './urls.js';

/** File names the proxy tries over BitTorrent unless told otherwise (shell globs on the last path segment). */
export const DEFAULT_PACKAGE_PATTERNS: readonly string[] = ['*.rpm', '*.drpm', '*.deb', '*.udeb', '*.ddeb', '*.pkg.tar.*', '*.apk'];

export const DEFAULT_CONFIG_FILE = '/etc/pkgtorrent.conf';

/** serve's and the proxy's log lines: text, or one JSON object per line (json-log.ts). */
export type LogFormat = 'text' | 'json';
const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];





/** How a value is shown by `pkgtorrent config`: in the syntax the config file takes. */
export type ValueKind = 'text' | 'size' | 'duration';

/**
 * Every setting: its key in the config file, the parser its values go
 * through, and the flag (with its value placeholder) and help that commands
 * generate their options from; `shownDefault` where the default is better
 * said in words than as its value; `details`, what only --help adds to the
 * help (`pkgtorrent config` reports `help` alone); `separator`, on a flag
 * that repeats, what joins its values into the one list text that the config
 * file and the variable spell.
 */
export const SETTINGS = {
  root: { flag: '--root <dir>', shownDefault: 'the current directory', parse: str, default: (): string => '.', help: 'mirror document root' },
  'cache-dir': { flag: '--cache-dir <dir>', parse: str, default: (): string => '/var/cache/torrent_service', help: 'cache directory' },
  trackers: { flag: '--trackers <file>', parse: str, default: (): string => '/var/lib/torrent_service/trackers', help: 'trackers file' },
  'piece-length': { flag: '--piece-length <size>', parse: (t: string) => parsePieceLength(t), default: (): number => DEFAULT_PIECE_LENGTH, help: 'piece length (a size); make without -l or it: 256K, as mktorrent', details: 'bytes with an optional K or M suffix (256K, 1M), a power of two from 16K to 256M; make -l also takes N (2^N) and auto', kind: 'size' },
  'service-name': {
    flag: '--service-name <name>',
    parse: (t: string) => {
      if (!/^[A-Za-z0-9._~-]+$/.test(t)) throw new PkgError('usage', `invalid service name '${t}'`);
      return t;
    },
    default: (): string => DEFAULT_SERVICE_NAME,
    help: 'path segment that routes to the service',
  },
  host: { flag: '--host <addr>', parse: str, default: (): string => '127.0.0.1', help: 'address serve listens on' },
  port: { flag: '--port <n>', parse: parseInteger(0, 65535), default: (): number => 8080, help: 'port serve listens on', details: '0 for any free one' },
  'base-url': {
    flag: '--base-url <url>',
    parse: (t: string) => {
      const problem = baseUrlProblem(t);
      if (problem) throw new PkgError('usage', `invalid base URL '${t}': ${problem}`);
      return t.replace(/\/+$/, '');
    },
    default: (): string | undefined => undefined,
    shownDefault: 'none',
    help: 'scheme and host of web-seed URLs (default: from the request)',
  },
  // What serve (and make --layout service) put into every torrent besides the
  // files: further web seeds, and BEP 27's private flag and a source string,
  // which are inside info and so change the info hash.
  'web-seeds': {
    flag: '--web-seeds <url>', separator: ',',
    parse: (t: string) =>
      parseList(t).map((u) => {
        const problem = baseUrlProblem(u);
        if (problem) throw new PkgError('usage', `invalid web seed '${u}': ${problem}`);
        return u.replace(/\/+$/, '');
      }),
    default: (): string[] => [],
    help: "further web seeds: base URLs of other mirrors of the same tree (or a CDN), put in url-list after the mirror's own, in this order, with the same paths (the flag repeats; elsewhere a comma-separated list)",
  },
  private: { flag: '--private', parse: parseBool, default: (): boolean => false, help: 'mark torrents private (BEP 27: peers from the trackers only, no DHT, PEX or local discovery); changes every info hash' },
  source: {
    flag: '--source <text>',
    parse: (t: string) => {
      if (/[\0-\x1f\x7f]/.test(t)) throw new PkgError('usage', `invalid source '${t}': no control characters`);
      return t;
    },
    default: (): string | undefined => undefined,
    shownDefault: 'none',
    help: "a source string in every torrent's info dictionary (as mktorrent -s), which keeps a fleet's swarms apart from others of the same files; changes every info hash",
  },
  'trust-proxy': { flag: '--trust-proxy', parse: parseBool, default: (): boolean => false, help: 'honour X-Forwarded-Proto/Host' },
  files: { flag: '--files', parse: parseBool, default: (): boolean => false, help: 'serve the files under the root too', details: 'GET and HEAD, with Range' },
  workers: { flag: '--workers <n>', parse: parseInteger(1, 256), default: (): number => 1, help: 'serve processes (node:cluster)' },
  jobs: { flag: '-j, --jobs <n>', parse: parseInteger(0, 1024), default: (): number => 0, help: 'hash worker threads (0: one per core)', details: 'serve divides the cores among its workers' },
  'trackers-interval': {
    flag: '--trackers-interval <duration>',
    parse: (t: string) => parseDuration(t, 'interval'),
    default: (): number => 60_000,
    help: 'how often serve looks for a changed trackers file',
    kind: 'duration',
  },
  'max-body': { flag: '--max-body <size>', parse: (t: string) => parseSize(t, 'body size'), default: (): number => 1024 * 1024, help: 'largest POST body serve accepts', kind: 'size' },
  'max-paths': { flag: '--max-paths <n>', parse: parseInteger(1, 1_000_000), default: (): number => 5000, help: 'most paths in one request' },
  'max-glob-matches': { flag: '--max-glob-matches <n>', parse: parseInteger(1, 1_000_000), default: (): number => 5000, help: 'most files one simple-mode glob may match' },
  'queue-limit': { flag: '--queue-limit <n>', parse: parseInteger(1, 1_000_000), default: (): number => 64, help: 'most distinct torrents one process builds at once; one more is 503' },
  'request-timeout': { flag: '--request-timeout <duration>', parse: (t: string) => parseDuration(t, 'timeout'), default: (): number => 120_000, help: 'longest a request may take', kind: 'duration' },
  'allow-outside': {
    flag: '--allow-outside <dir>', separator: ':',
    parse: parsePathList,
    default: (): string[] => [],
    help: 'trees outside the root that symbolic links under it may lead to (the flag repeats; elsewhere a colon-separated list)',
  },
  dotfiles: { flag: '--dotfiles', parse: parseBool, default: (): boolean => false, help: 'hash and serve dot-files and dot-directories too' },
  revalidate: {
    flag: '--revalidate <duration>',
    parse: (t: string) => parseDuration(t, 'revalidate interval'),
    // Bounded staleness, as nginx's open_file_cache_valid: mirrors replace
    // files by rename, so a second is far inside any sync.
    default: (): number => 1000,
    help: "how long serve trusts a cached torrent's check of its files for GETs (0: check on every request)",
    details: "as nginx's open_file_cache_valid; with 0 a replaced package never yields its old torrent",
    kind: 'duration',
  },
  // The origin seeder of `serve --seed` and the tracker it feeds (pkgtorrent-service(8), ORIGIN SEEDER).
  seed: { flag: '--seed', parse: parseBool, default: (): boolean => false, help: 'seed every torrent the service hands out over BitTorrent, from the files under the root' },
  'seed-listen': {
    flag: '--seed-listen <addr:port>',
    parse: (t: string) => {
      if (!/^(\[[0-9a-fA-F:.]+\]|[0-9.]+|[A-Za-z0-9.-]+):\d{1,5}$/.test(t) || Number(t.slice(t.lastIndexOf(':') + 1)) > 65535) throw new PkgError('usage', `invalid seed address '${t}': expected ADDRESS:PORT such as 0.0.0.0:6881`);
      return t;
    },
    default: (): string => '0.0.0.0:6881',
    help: 'address and TCP port the origin seeder takes peers on',
  },
  'seed-idle': { flag: '--seed-idle <duration>', parse: (t: string) => parseDuration(t, 'seed idle time'), default: (): number => 600_000, help: 'the origin seeder drops a torrent not handed out nor uploaded from for this long', kind: 'duration' },
  'seed-slots': {
    flag: '--seed-slots <n>',
    parse: parseInteger(1, 1000),
    // Measured on the fleet bench (8 clients, 64 MiB, 100 Mbit/s): 1 slot
    // let the origin go quiet for seconds (egress 1.52, 25 s), 4 sent most
    // pieces several times (1.77 at 4 clients); 2 gave 1.12-1.15 in 9-10 s.
    default: (): number => 2,
    help: 'peers the origin seeder uploads to at once; few, so peers take pieces from each other rather than all from the mirror',
  },
  'seed-connections': { flag: '--seed-connections <n>', parse: parseInteger(1, 100_000), default: (): number => 200, help: 'most peer connections of the origin seeder' },
  'tracker-whitelist': {
    flag: '--tracker-whitelist <file>',
    parse: str,
    default: (): string | undefined => undefined,
    shownDefault: 'none',
    help: "a tracker's whitelist (opentracker's access.whitelist) that serve adds every info hash it hands out to",
  },
  'tracker-pid-file': {
    flag: '--tracker-pid-file <file>',
    parse: str,
    default: (): string | undefined => undefined,
    shownDefault: 'none',
    help: 'pid file of that tracker: sent SIGHUP to reload the whitelist after serve changed it',
  },
  // serve and proxy: Prometheus metrics and health checks on a listener of their own.
  'metrics-listen': {
    flag: '--metrics-listen <addr:port>',
    parse: (t: string) => {
      if (!/^(\[[0-9a-fA-F:.]+\]|[0-9.]+|[A-Za-z0-9.-]+):\d{1,5}$/.test(t) || Number(t.slice(t.lastIndexOf(':') + 1)) > 65535) throw new PkgError('usage', `invalid metrics address '${t}': expected ADDRESS:PORT such as 127.0.0.1:9470`);
      return t;
    },
    default: (): string | undefined => undefined,
    shownDefault: 'none',
    help: 'address and port of a separate HTTP listener for /metrics (Prometheus), /-/healthy and /-/ready',
  },
  'log-format': {
    flag: '--log-format <format>',
    parse: (t: string): LogFormat => {
      if (!(LOG_FORMATS as readonly string[]).includes(t)) throw new PkgError('usage', `invalid log format '${t}': expected text or json`);
      return t as LogFormat;
    },
    default: (): LogFormat => 'text',
    help: 'text, or json: one JSON object per line (access lines with the client address and user agent)',
  },
  // hash and cache clean: the last run's figures for node_exporter's textfile collector.
  'metrics-file': {
    flag: '--metrics-file <path>',
    parse: (t: string) => {
      if (!t) throw new PkgError('usage', 'empty metrics file path');
      return t;
    },
    default: (): string | undefined => undefined,
    shownDefault: 'none',
    help: 'write the run\'s metrics here at its end (Prometheus text, for node_exporter\'s textfile collector)',
    details: 'a directory: pkgtorrent-hash.prom or pkgtorrent-cache-clean.prom in it',
  },
  // pkgtorrent proxy (pkgtorrent-proxy(8)); lists are comma-separated, as
  // mirror URLs hold colons.
  'proxy-host': { flag: '--host <addr>', parse: str, default: (): string => '127.0.0.1', help: 'address the proxy listens on' },
  'proxy-port': { flag: '--port <n>', parse: parseInteger(0, 65535), default: (): number => 3142, help: 'port the proxy listens on' },
  mirror: { flag: '--mirror <name=url>', separator: ',', parse: (t: string) => parseList(t).map((m) => (parseMirror(m), m)), default: (): string[] => [], help: 'NAME=URL pairs: /NAME/<path> on the proxy is URL/<path>' },
  'package-patterns': {
    flag: '--package-patterns <globs>',
    parse: (t: string) => parseList(t),
    default: (): string[] => [...DEFAULT_PACKAGE_PATTERNS],
    help: 'file names (comma-separated shell globs) the proxy fetches over BitTorrent',
  },
  'min-size': { flag: '--min-size <size>', parse: (t: string) => parseSize(t, 'minimum size'), default: (): number => 1024 * 1024, help: 'smallest package the proxy fetches over BitTorrent', kind: 'size' },
  'stall-timeout': { flag: '--stall-timeout <duration>', parse: (t: string) => parseDuration(t, 'stall timeout'), default: (): number => 5000, help: 'no BitTorrent progress this long: finish from the mirror', kind: 'duration' },
  'lookup-timeout': { flag: '--lookup-timeout <duration>', parse: (t: string) => parseDuration(t, 'lookup timeout'), default: (): number => 3000, help: 'longest the proxy waits for a torrent from the service', kind: 'duration' },
  'service-miss-ttl': { flag: '--service-miss-ttl <duration>', parse: (t: string) => parseDuration(t, 'service-miss interval'), default: (): number => 600_000, help: 'how long a mirror prefix without a service goes direct', kind: 'duration' },
  store: { flag: '--store <dir>', parse: str, default: (): string => '/var/cache/pkgtorrent-proxy', help: 'directory of completed packages the proxy keeps and seeds' },
  'store-size': { flag: '--store-size <size>', parse: (t: string) => parseSize(t, 'store size'), default: (): number => 10 * 1024 ** 3, help: 'most bytes the store keeps (least recently used evicted)', kind: 'size' },
  'seed-time': { flag: '--seed-time <duration>', parse: (t: string) => parseDuration(t, 'seed time'), default: (): number => 3_600_000, help: 'how long a completed package is seeded', kind: 'duration' },
  'seed-ratio': { flag: '--seed-ratio <ratio>', parse: parseRatio, default: (): number => 0, help: 'stop seeding a package at this upload ratio (0: only seed-time counts)' },
  'seed-max-torrents': { flag: '--seed-max-torrents <n>', parse: parseInteger(0, 100_000), default: (): number => 100, help: 'most packages seeded at once' },
  'upload-limit': { flag: '--upload-limit <size>', parse: (t: string) => parseSize(t, 'upload limit'), default: (): number => 0, help: 'bytes per second uploaded to peers, all torrents (0: unlimited)', kind: 'size' },
  'bt-port': { flag: '--bt-port <ports>', parse: str, default: (): string => '6881-6999', help: 'TCP port for BitTorrent peers, or a range (FIRST-LAST) of which the first free one is used' },
  dht: { flag: '--dht <yes|no>', parse: parseBool, default: (): boolean => false, help: 'find peers through the DHT' },
  lpd: { flag: '--lpd <yes|no>', parse: parseBool, default: (): boolean => false, help: 'find peers on the local network (BEP 14)' },
  pex: { flag: '--pex <yes|no>', parse: parseBool, default: (): boolean => false, help: 'exchange peers with peers (PEX)' },
  'allow-from': { flag: '--allow-from <cidr>', separator: ',', parse: (t: string) => parseList(t), default: (): string[] => [], help: 'CIDRs of clients allowed when not on loopback' },
  'allow-host': { flag: '--allow-host <host>', separator: ',', shownDefault: 'any', parse: (t: string) => parseList(t), default: (): string[] => [], help: 'hosts the proxy forwards to' },
} as const;



/** `NAME=URL` of the proxy's --mirror. */


export type SettingKey = keyof typeof SETTINGS;
export type Settings = { [K in SettingKey]: ReturnType<(typeof SETTINGS)[K]['default']> };
export type Source = 'flag' | 'env' | 'file' | 'default';

export interface ResolvedSettings {
  values: Settings;
  sources: Record<SettingKey, Source>;
  /** The config file read, if any. */
  configFile: string | null;
  /** For settings taken from the config file: the line they are on. */
  fileLines: Partial<Record<SettingKey, number>>;
}

export function envName(key: SettingKey): string {
  return `PKGTORRENT_${key.toUpperCase().replace(/-/g, '_')}`;
}

export function settingKeys(): SettingKey[] {
  return Object.keys(SETTINGS) as SettingKey[];
}

export function valueKind(key: SettingKey): ValueKind {
  const def = SETTINGS[key];
  return 'kind' in def ? def.kind : 'text';
}

/** The default as --help and the man page spell it. */
export function shownDefault(key: SettingKey): string {
  const def = SETTINGS[key];
  return 'shownDefault' in def ? def.shownDefault : formatValue(key, def.default()) || 'none';
}

/**
 * A setting's help as its flag shows it: with the default, unless there is
 * none or the flag takes no value (its absence is the default).
 */
export function flagHelp(key: SettingKey): string {
  const def = SETTINGS[key];
  let text = 'details' in def ? `${def.help}; ${def.details}` : def.help;
  // A repeatable flag says so (the config file and the variable take a list instead).
  if ('separator' in def && !/repeats/.test(text)) text += '; the flag repeats';
  const shown = shownDefault(key);
  return shown === 'none' || !def.flag.includes('<') ? text : `${text} (default: ${shown})`;
}

export function isKey(k: string): k is SettingKey {
  return Object.hasOwn(SETTINGS, k);
}

/** What separates a list setting's items in its text: ':' for paths, ',' for every other list (URLs hold colons). */
export function listSeparator(key: SettingKey): string {
  const def = SETTINGS[key];
  return 'separator' in def ? def.separator : ',';
}

/** The long flag of a setting ("--port" for proxy-port, "--jobs" for "-j, --jobs <n>"), as a user types it. */
export function flagName(key: SettingKey): string {
  return /--[\w-]+/.exec(SETTINGS[key].flag)![0];
}

/** A value as the config file would spell it: 1M rather than 1048576, 1m rather than 60000. */
export function formatValue(key: SettingKey, value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  // Joined as the setting's parser splits it: the config file must read back what `config` shows.
  if (Array.isArray(value)) return value.join(listSeparator(key));
  if (typeof value === 'number') {
    const kind = valueKind(key);
    if (kind === 'duration') return formatUnits(value, [['w', 7 * 86400_000], ['d', 86400_000], ['h', 3600_000], ['m', 60_000], ['s', 1000]]) ?? `${value / 1000}s`;
    if (kind === 'size') return formatUnits(value, [['G', 1024 ** 3], ['M', 1024 ** 2], ['K', 1024]]) ?? String(value);
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function formatUnits(n: number, units: Array<[string, number]>): string | null {
  for (const [suffix, size] of units) if (n !== 0 && n % size === 0) return `${n / size}${suffix}`;
  return null;
}
