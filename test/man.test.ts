// The man pages: they render without a single groff warning, package.json
// installs them, and they cannot fall behind the code: every command, every
// option of the program and every setting must be documented.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CommandUnknownOpts as Command } from '@commander-js/extra-typings';
import { need } from './helpers/oracles.js';
import { decodeTorrent } from './helpers/bencode.js';
import { startServe } from './helpers/server.js';
import { buildProgram } from '../src/cli/main.js';
import { loadCommands } from '../src/commands/index.js';
import { Context } from '../src/cli/context.js';
import { SETTINGS, envName, flagHelp, shownDefault, type SettingKey } from '../src/core/config.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const PAGES = ['man/pkgtorrent.1', 'man/pkgtorrent.conf.5', 'man/pkgtorrent-service.8', 'man/pkgtorrent-proxy.8'];
const source = (page: string) => readFileSync(REPO + page, 'utf8');
/** How roff source spells a command-line word: every '-' escaped. */
const roff = (word: string) => word.replace(/-/g, '\\-');

t.test('every page renders with no groff output at all under -ww', async (t) => {
  if (!need(t, 'groff')) return;
  for (const page of PAGES) {
    const r = spawnSync('groff', ['-man', '-ww', '-z', page], { cwd: REPO, encoding: 'utf8', timeout: 30_000 });
    t.equal(r.status, 0, `${page}: exit status`);
    t.equal(r.stderr + r.stdout, '', `${page}: no warnings`);
    // And as text, the way man shows it: has its title and no raw requests.
    const text = spawnSync('groff', ['-man', '-Tutf8', '-P-c', '-P-b', '-P-u', page], { cwd: REPO, encoding: 'utf8', timeout: 30_000 }).stdout;
    t.match(text, /^NAME$/m, `${page}: NAME section`);
    t.notMatch(text, /^\s*\.[A-Z]{1,2}\b/m, `${page}: no macro printed as text`);
  }
});

t.test('package.json installs the pages', async (t) => {
  const pkg = JSON.parse(source('package.json')) as { man?: string[]; files?: string[] };
  t.same(pkg.man, PAGES);
  t.ok(pkg.files?.includes('man'), 'the man directory is published');
});

/** Every subcommand below `cmd` that has an action (leaves), with its full name. */
function commands(cmd: Command, prefix: string[] = []): Array<{ name: string; cmd: Command }> {
  return cmd.commands.flatMap((c) => {
    const name = [...prefix, c.name()];
    return c.commands.length ? commands(c, name) : [{ name: name.join(' '), cmd: c }];
  });
}

t.test('pkgtorrent.1 documents every command and every option', async (t) => {
  const page = source('man/pkgtorrent.1');
  const program = buildProgram(new Context({ argv: [], cwd: REPO, vars: {}, stdout: process.stdout, stderr: process.stderr }), await loadCommands([]));
  const all = commands(program).filter((c) => c.name !== 'help');
  t.ok(all.length >= 7, all.map((c) => c.name).join(', '));
  for (const { name, cmd } of all) {
    t.match(page, new RegExp(`^\\.SS "pkgtorrent ${name}[ "]`, 'm'), `section for ${name}`);
    const section = page.slice(page.indexOf(`.SS "pkgtorrent ${name}`)).split(/^\.S[SH] /m)[1] ?? '';
    for (const opt of cmd.options) {
      if (opt.long === '--help') continue;
      // '--no-date' is declared as --no-date; commander keeps it as written.
      t.ok(section.includes(roff(opt.long!)), `${name}: ${opt.long} documented in its section`);
      if (opt.short) t.ok(section.includes(roff(opt.short)), `${name}: ${opt.short} documented`);
    }
  }
  const globalSection = page.slice(page.indexOf('.SH GLOBAL OPTIONS'), page.indexOf('.SH COMMANDS'));
  for (const opt of program.options) t.ok(globalSection.includes(roff(opt.long!)), `global ${opt.long} documented`);
  for (const heading of ['SYNOPSIS', 'DESCRIPTION', 'ENVIRONMENT', 'FILES', 'EXIT STATUS', 'EXAMPLES', 'SEE ALSO']) {
    t.match(page, new RegExp(`^\\.SH "?${heading}"?$`, 'm'), heading);
  }
  const exit = page.slice(page.indexOf('.SH EXIT STATUS'), page.indexOf('.SH EXAMPLES'));
  for (const code of ['0', '1', '2']) t.match(exit, new RegExp(`^\\.B ${code}$`, 'm'), `exit status ${code}`);
});

t.test('pkgtorrent.conf.5 documents every setting with its variable and the default the code has', async (t) => {
  const page = source('man/pkgtorrent.conf.5');
  for (const key of Object.keys(SETTINGS) as SettingKey[]) {
    const at = page.indexOf(`.BR ${roff(key)} " (${envName(key)}; default: `);
    t.not(at, -1, `${key}: its entry`);
    const documented = /default: (.*)\)"$/m.exec(page.slice(at))?.[1];
    // As --help shows it: the value as the config file spells it, or the words the table gives.
    t.equal(documented?.replace(/\\-/g, '-'), shownDefault(key), `${key}: the page's default is the code's`);
  }
});

t.test("every setting's --help shows the default the table has", async (t) => {
  const program = buildProgram(new Context({ argv: [], cwd: REPO, vars: {}, stdout: process.stdout, stderr: process.stderr }), await loadCommands([]));
  const options = [...program.options, ...program.commands.flatMap((c) => c.options)];
  for (const key of Object.keys(SETTINGS) as SettingKey[]) {
    // A setting's flag is usually --<key>; the proxy's proxy-host and proxy-port are its --host and --port.
    const long = SETTINGS[key].flag.replace(/^-\w, /, '').split(' ')[0];
    const shown = options.filter((o) => o.long === long && o.description.startsWith(SETTINGS[key].help));
    t.ok(shown.length, `${key}: an option made from the table`);
    for (const o of shown) t.equal(o.description, flagHelp(key), `${key}: help and default`);
  }
  t.match(flagHelp('port'), /\(default: 8080\)$/);
  t.match(flagHelp('revalidate'), /\(default: 1s\)$/, 'a duration as the config file spells it');
});

t.test('pkgtorrent-service.8 has the protocol, the cache layout and the deployment examples', async (t) => {
  const page = source('man/pkgtorrent-service.8');
  for (const heading of ['HTTP PROTOCOL', 'CACHE LAYOUT', 'DEPLOYMENT', 'EXAMPLES']) t.match(page, new RegExp(`^\\.SH "?${heading}"?$`, 'm'));
  const examples = page.slice(page.indexOf('.SH EXAMPLES'));
  t.match(examples, /^\[Service\]$/m, 'systemd unit');
  t.match(examples, /^ExecStart=\/usr\/bin\/pkgtorrent .*serve$/m);
  t.match(examples, /^[\d*]+ [\d*]+ \* \* [\d*]+ +\S+ +pkgtorrent .*hash/m, 'cron line for hash');
  t.match(examples, /^[\d*]+ [\d*]+ \* \* [\d*]+ +\S+ +pkgtorrent .*cache clean/m, 'cron line for cache clean');
  // The whole Apache and nginx snippets are checked against what test/frontends.test.ts runs.
  t.match(examples, /^ProxyPassMatch "\^\/\(\[\^\/\]\+\)\/torrent.*" "http:\/\/127\.0\.0\.1:8080\/\$1\/torrent_service\/\$3" nocanon$/m, 'Apache, every prefix');
  t.match(examples, /^location ~ \^\/\[\^\/\]\+\/torrent_service\/ \{$/m, 'nginx location for every prefix');
  t.match(examples, /^ {4}proxy_pass http:\/\/127\.0\.0\.1:8080;$/m);
  for (const route of ['/digest/', '/simple/', '/nullfile/']) t.ok(page.includes(route), route);
  for (const status of ['200', '400', '403', '404', '405', '412', '413', '503']) t.match(page, new RegExp(`^\\.B ${status}$`, 'm'), `status ${status}`);
});

t.test('pkgtorrent-service.8 maps every setting of the original service to one of ours', async (t) => {
  const page = source('man/pkgtorrent-service.8');
  t.match(page, /^\.SH MIGRATION$/m);
  const section = page.slice(page.indexOf('.SH MIGRATION'), page.indexOf('.SH EXAMPLES'));
  // The original's name, and the setting of ours its entry must name.
  const MAP: Array<[string, SettingKey]> = [
    ['CACHEROOT', 'cache-dir'],
    ['TRACKERS_LIST_PATH', 'trackers'],
    ['TRACKERS_LIST_INTERVAL', 'trackers-interval'],
    ['BLOCKSIZE', 'piece-length'],
    ['INFOCACHEMAX', 'revalidate'],
    ['INFOCACHEWAIT', 'request-timeout'],
    ['WSGIScriptAliasMatch', 'root'],
  ];
  const entries = section.split(/^\.TP$/m).slice(1);
  for (const [original, ours] of MAP) {
    t.ok(ours in SETTINGS, `${ours} is a setting`);
    const entry = entries.find((e) => e.startsWith(`\n.B ${original} `) || e.startsWith(`\n.BI "${original} `));
    t.ok(entry, `an entry for ${original}`);
    t.match(entry ?? '', new RegExp(`^\\.BR? ${roff(ours).replace(/\\/g, '\\\\')}( |$)`, 'm'), `${original}: names ${ours}`);
  }
  t.match(section, /ProxyPassMatch/, 'the Apache alias becomes the proxy line');
});

/** The shell text of a man page's .EX block: roff escapes undone. */
function unroff(text: string): string {
  return text.replace(/\\\(aq/g, "'").replace(/\\-/g, '-').replace(/\\e/g, '\\');
}

t.test("pkgtorrent-service.8's digest-by-hand example works as written, '+' in names included", async (t) => {
  if (!need(t, 'curl')) return;
  const page = source('man/pkgtorrent-service.8');
  const start = page.indexOf('.EX\n', page.indexOf('A torrent by hand'));
  const script = unroff(page.slice(start + 4, page.indexOf('.EE', start)));
  t.match(script, /--data-urlencode/);
  const dir = t.testdir({ cache: {}, work: {} });
  const root = join(dir, 'root');
  const files = { 'pub/isos/big.iso': 'an iso\n'.repeat(5000), 'pub/el9/gcc-c++-11.4.1.rpm': 'gcc\n'.repeat(9000), 'pub/el9/libstdc++-11.4.1.rpm': 'lib\n'.repeat(7000) };
  for (const [rel, text] of Object.entries(files)) {
    mkdirSync(join(root, rel, '..'), { recursive: true });
    writeFileSync(join(root, rel), text);
  }
  const srv = await startServe(t, { root, cacheDir: join(dir, 'cache') });
  const run = (text: string) =>
    spawnSync('bash', ['-euo', 'pipefail', '-c', text.replaceAll('https://mirror.example', srv.url)], {
      cwd: join(dir, 'work'),
      encoding: 'utf8',
      timeout: 60_000,
    });
  const r = run(script);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /^HTTP\/1\.1 412 /m, 'the GET before the POST');
  const tor = decodeTorrent(readFileSync(join(dir, 'work/x.torrent')));
  t.same(
    tor.info.files.filter((f: { attr?: string }) => f.attr !== 'p').map((f: { path: string[] }) => f.path.join('/')),
    ['el9/gcc-c++-11.4.1.rpm', 'el9/libstdc++-11.4.1.rpm'],
    'x.torrent holds both packages',
  );
  t.equal(decodeTorrent(readFileSync(join(dir, 'work/big.iso.torrent'))).info.name, 'big.iso');
  // What the page used to say: -d sends '+' as a space, so the digest no longer matches.
  const old = run(script.replace(/--data-urlencode/g, '-d').replace('curl -o x.torrent', 'curl -s -w "%{http_code}" -o /dev/null'));
  t.match(old.stdout, /400$/, '-d p=... is refused for a name with +');
});
