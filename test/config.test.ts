// Settings: flag > environment > config file > default, what `pkgtorrent
// config` says about them, and one clear line for every way to get them wrong.
import t from 'tap';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { cli, bin } from './helpers/cli.js';
import { SETTINGS, formatValue, settingKeys, type SettingKey } from '../src/core/config.js';
import { parseConfigFile, resolveSettings } from '../src/core/settings-resolve.js';
import { configReport } from '../src/commands/config.js';

const CONF = [
  '# pkgtorrent settings',
  'root = /srv/mirror',
  'PORT = 9001',
  'piece_length = 256K',
  '',
  'trackers = "/etc/pkgtorrent/trackers list"',
  "host = '0.0.0.0'",
  'trust-proxy = yes',
  'trackers-interval = 2m',
].join('\r\n');

t.test('flag > environment > config file > default, and config says which', async (t) => {
  const dir = t.testdir({ 'pkgtorrent.conf': CONF });
  const conf = join(dir, 'pkgtorrent.conf');
  const r = await cli(['--config', conf, '--piece-length', '64K', 'config', '--json'], {
    cwd: dir,
    vars: { PKGTORRENT_PORT: '9002', PKGTORRENT_PIECE_LENGTH: '512K', PKGTORRENT_HOST: '' },
  });
  t.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  t.equal(j.configFile, conf);
  const s = j.settings;
  t.match(s['piece-length'], { value: 65536, text: '64K', source: 'flag', origin: '--piece-length' }, 'flag beats env and file');
  t.match(s.port, { value: 9002, source: 'env', origin: 'PKGTORRENT_PORT' }, 'env beats file');
  t.match(s.root, { value: '/srv/mirror', source: 'file', origin: `${conf}:2` });
  t.match(s.trackers, { value: '/etc/pkgtorrent/trackers list', source: 'file', origin: `${conf}:6` }, 'quotes keep spaces');
  t.match(s.host, { value: '0.0.0.0', source: 'file' }, 'an empty variable counts as unset');
  t.match(s['trust-proxy'], { value: true, text: 'yes', source: 'file' });
  t.match(s['trackers-interval'], { value: 120_000, text: '2m', source: 'file' });
  t.match(s['cache-dir'], { value: '/var/cache/torrent_service', source: 'default', origin: 'default' });
  t.match(s['base-url'], { value: null, source: 'default' });
  t.match(s['request-timeout'], { text: '2m', source: 'default' });
  t.match(s['max-body'], { text: '1M' });

  const text = await cli(['--config', conf, 'config'], { cwd: dir, vars: { PKGTORRENT_PORT: '9002' } });
  t.equal(text.code, 0, text.stderr);
  const lines = text.stdout.split('\n');
  t.equal(lines[0], `config file: ${conf}`);
  t.match(lines[1], /^SETTING +VALUE +SOURCE$/);
  // Columns are as wide as their widest value: match the row, not the padding.
  t.ok(lines.some((l) => /^root +\/srv\/mirror +file /.test(l) && l.endsWith(`file ${conf}:2`)), text.stdout);
  t.match(text.stdout, /^port +9002 +env PKGTORRENT_PORT$/m);
  t.match(text.stdout, /^piece-length +256K +file .*:4$/m);
  t.match(text.stdout, /^base-url +\(unset\) +default$/m);
});

t.test('the settings reach the commands', async (t) => {
  const dir = t.testdir({ a: {}, b: {}, c: {} });
  writeFileSync(join(dir, 'conf'), `cache-dir = ${join(dir, 'a')}\n`);
  const stats = async (args: string[], vars: Record<string, string> = {}) =>
    JSON.parse((await cli(['--config', join(dir, 'conf'), ...args, 'cache', 'stats', '--json'], { vars })).stdout).cacheDir;
  t.equal(await stats([]), join(dir, 'a'), 'file');
  t.equal(await stats([], { PKGTORRENT_CACHE_DIR: join(dir, 'b') }), join(dir, 'b'), 'env');
  t.equal(await stats(['--cache-dir', join(dir, 'c')], { PKGTORRENT_CACHE_DIR: join(dir, 'b') }), join(dir, 'c'), 'flag');
  // PKGTORRENT_CONFIG names the file when --config does not.
  const viaEnv = await cli(['cache', 'stats', '--json'], { vars: { PKGTORRENT_CONFIG: join(dir, 'conf') } });
  t.equal(JSON.parse(viaEnv.stdout).cacheDir, join(dir, 'a'));
  // Relative paths are relative to the working directory.
  const rel = await cli(['--cache-dir', 'b', 'config', '--json'], { cwd: dir });
  t.equal(JSON.parse(rel.stdout).settings['cache-dir'].value, join(dir, 'b'));
});

t.test('the default config file, and an empty PKGTORRENT_CONFIG meaning none', async (t) => {
  const dir = t.testdir({ 'default.conf': 'port = 1234\n' });
  const def = join(dir, 'default.conf');
  const used = await resolveSettings({}, {}, def);
  t.equal(used.configFile, def);
  t.equal(used.values.port, 1234);
  t.same(used.fileLines, { port: 1 });
  const none = await resolveSettings({}, { PKGTORRENT_CONFIG: '' }, def);
  t.equal(none.configFile, null);
  t.equal(none.values.port, 8080);
  const absent = await resolveSettings({}, {}, join(dir, 'missing.conf'));
  t.equal(absent.configFile, null, 'a missing default config file is no error');
  const r = await cli(['config'], { vars: { PKGTORRENT_CONFIG: '' } });
  t.match(r.stdout, /^config file: none \(PKGTORRENT_CONFIG is empty\)\n/);
  const r2 = await cli(['config']);
  t.match(r2.stdout, /^config file: none \(\/nonexistent\/pkgtorrent\.conf does not exist\)\n/);
});

t.test('every bad config file is one line naming file, line and key; exit 2', async (t) => {
  const cases: Array<[string, string]> = [
    ['port = 80\ncolour = red\n', ":2: unknown setting 'colour'"],
    ['cache_dri = /x\n', ":1: unknown setting 'cache_dri' (did you mean 'cache-dir'?)"],
    ['config = /etc/other.conf\n', ":1: unknown setting 'config' (a config file cannot name another one)"],
    ['# ok\njust some words\n', ":2: expected 'key = value', got 'just some words'"],
    ['\n\npiece-length = 3K\n', ":3: piece-length: invalid piece length '3K': must be at least 16K"],
    ['port = 70000\n', ":1: port: expected a number from 0 to 65535, got '70000'"],
    ['files = maybe\n', ":1: files: expected yes or no, got 'maybe'"],
    ['base-url = ftp://mirror/\n', ":1: base-url: invalid base URL 'ftp://mirror/': unsupported scheme 'ftp' (use http or https)"],
    ['request-timeout = soon\n', ":1: request-timeout: invalid timeout 'soon': expected a number with a unit: ms, s, m, h, d or w (300ms, 5s, 30d)"],
    ['root = /a\nhost = ::\nroot = /b\n', ':3: root: set twice (first on line 1)'],
    ['root =\n', ':1: root: no value (remove the line to use the default)'],
    ['root = ""\n', ':1: root: no value (remove the line to use the default)'],
  ];
  const dir = t.testdir({});
  for (const [i, [text, message]] of cases.entries()) {
    const file = join(dir, `bad${i}.conf`);
    writeFileSync(file, text);
    const r = await cli(['--config', file, 'config']);
    t.equal(r.code, 2, message);
    t.equal(r.stderr, `pkgtorrent: ${file}${message}\n`);
    t.equal(r.stdout, '');
    t.throws(() => parseConfigFile(text, 'f'), { message: `f${message}` });
  }
  // Any command reads the config file, not only `config`.
  writeFileSync(join(dir, 'bad.conf'), 'colour = red\n');
  const stats = await cli(['--config', join(dir, 'bad.conf'), 'cache', 'stats']);
  t.equal(stats.code, 2);
  t.equal(stats.stderr, `pkgtorrent: ${join(dir, 'bad.conf')}:1: unknown setting 'colour'\n`);
});

t.test('unreadable config files and bad values from flags and environment', async (t) => {
  const dir = t.testdir({ sub: {} });
  const expectUsage = async (argv: string[], vars: Record<string, string>, stderr: string) => {
    const r = await cli(argv, { vars });
    t.equal(r.code, 2, stderr);
    t.equal(r.stderr, `pkgtorrent: ${stderr}\n`);
  };
  await expectUsage(['--config', join(dir, 'missing.conf'), 'config'], {}, `config file ${join(dir, 'missing.conf')}: no such file or directory`);
  await expectUsage(['config'], { PKGTORRENT_CONFIG: join(dir, 'missing.conf') }, `config file ${join(dir, 'missing.conf')}: no such file or directory`);
  await expectUsage(['--config', join(dir, 'sub'), 'config'], {}, `config file ${join(dir, 'sub')}: is a directory`);
  await expectUsage(['config'], { PKGTORRENT_PORT: 'abc' }, "PKGTORRENT_PORT: expected a whole number, got 'abc'");
  await expectUsage(['config'], { PKGTORRENT_PIECE_LENGTH: '3K' }, "PKGTORRENT_PIECE_LENGTH: invalid piece length '3K': must be at least 16K");
  await expectUsage(['config'], { PKGTORRENT_TRUST_PROXY: 'perhaps' }, "PKGTORRENT_TRUST_PROXY: expected yes or no, got 'perhaps'");
  await expectUsage(['--piece-length', '100K', 'config'], {}, "invalid piece length '100K': must be a power of two");
  // A wrong environment value is an error even while a flag overrides it.
  const r = await cli(['--piece-length', '1M', 'config', '--json'], { vars: { PKGTORRENT_PIECE_LENGTH: '3K' } });
  t.equal(r.code, 2, 'every given value is checked, even one a flag overrides');
});

t.test('the binary: exit 2 and one line, no stack trace', async (t) => {
  const dir = t.testdir({ 'bad.conf': 'piece-length = 1000\n' });
  const r = await bin(['--config', join(dir, 'bad.conf'), 'config']);
  t.equal(r.code, 2);
  t.equal(r.stderr, `pkgtorrent: ${join(dir, 'bad.conf')}:1: piece-length: invalid piece length '1000': must be at least 16K\n`);
  const ok = await bin(['config', '--json'], { env: { PKGTORRENT_ROOT: dir } });
  t.equal(ok.code, 0, ok.stderr);
  t.equal(JSON.parse(ok.stdout).settings.root.source, 'env');
});

t.test('web-seeds are checked as base-url is; private and source', async (t) => {
  t.same(SETTINGS['web-seeds'].parse(' http://a.example/x/ , https://b.example// '), ['http://a.example/x', 'https://b.example'], 'trailing slashes dropped, as for base-url');
  for (const bad of ['ftp://a.example', 'not a url', 'http://a.example,mirror.example']) {
    t.throws(() => SETTINGS['web-seeds'].parse(bad), { name: 'PkgError', kind: 'usage', message: /^invalid web seed '[^']+': (unsupported scheme|not a URL)/ }, bad);
  }
  t.equal(SETTINGS.private.parse('yes'), true);
  t.equal(SETTINGS.source.parse('fleet-a'), 'fleet-a');
  t.throws(() => SETTINGS.source.parse('a\nb'), { kind: 'usage', message: /no control characters/ });
});

t.test('values are shown the way the config file takes them', async (t) => {
  t.equal(formatValue('piece-length', 1048576), '1M');
  t.equal(formatValue('piece-length', 16384), '16K');
  t.equal(formatValue('max-body', 1000), '1000');
  t.equal(formatValue('trackers-interval', 60_000), '1m');
  t.equal(formatValue('request-timeout', 1500), '1.5s');
  t.equal(formatValue('request-timeout', 86400_000 * 14), '2w');
  t.equal(formatValue('files', false), 'no');
  t.equal(formatValue('port', 8080), '8080');

  // Lists read back as the same list: commas between URLs (which hold colons), colons between paths.
  const lists: Array<[SettingKey, string[], string]> = [
    ['mirror', ['fedora=http://dl.example:8080/pub/', 'debian=http://deb.example/'], 'fedora=http://dl.example:8080/pub/,debian=http://deb.example/'],
    ['allow-from', ['10.0.0.0/8', '192.168.1.0/24'], '10.0.0.0/8,192.168.1.0/24'],
    ['allow-host', ['a.example', 'b.example'], 'a.example,b.example'],
    ['package-patterns', ['*.rpm', '*.deb'], '*.rpm,*.deb'],
    ['allow-outside', ['/srv/a', '/srv/b'], '/srv/a:/srv/b'],
    ['web-seeds', ['http://m2.example:8080/pub', 'https://cdn.example'], 'http://m2.example:8080/pub,https://cdn.example'],
  ];
  for (const [key, value, text] of lists) {
    t.equal(formatValue(key, value), text, key);
    t.same(SETTINGS[key].parse(text), value, `${key} parses back`);
  }
  // Every list setting is one of those.
  const listKeys = settingKeys().filter((k) => Array.isArray(SETTINGS[k].default()));
  t.same(listKeys.sort(), lists.map(([k]) => k).sort(), 'every list setting checked');

  // The default cache dir falls back when it cannot be written; config says so
  // without creating anything.
  const dir = t.testdir({ file: 'a regular file' });
  const s = await resolveSettings({}, {}, '/nonexistent');
  s.values['cache-dir'] = join(dir, 'file', 'cache');
  const report = await configReport(s, { XDG_CACHE_HOME: join(dir, 'xdg') });
  t.equal(report.cacheDirFallback, join(dir, 'xdg', 'pkgtorrent'));
  s.values['cache-dir'] = join(dir, 'new', 'cache');
  t.equal((await configReport(s, {})).cacheDirFallback, null, 'a creatable dir needs no fallback');
});
