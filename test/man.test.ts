// The man pages: they render without a single groff warning, package.json
// installs them, and they cannot fall behind the code: every command, every
// option of the program and every setting must be documented.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { need } from './helpers/oracles.js';
import { buildProgram } from '../src/cli/main.js';
import { loadCommands } from '../src/commands/index.js';
import { Context } from '../src/cli/context.js';
import { SETTINGS, envName, type SettingKey } from '../src/core/config.js';

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

t.test('pkgtorrent.conf.5 documents every setting with its variable', async (t) => {
  const page = source('man/pkgtorrent.conf.5');
  for (const key of Object.keys(SETTINGS) as SettingKey[]) {
    t.match(page, `.BR ${roff(key)} " (${envName(key)}; default: `, key);
  }
});

t.test('pkgtorrent-service.8 has the protocol, the cache layout and the deployment examples', async (t) => {
  const page = source('man/pkgtorrent-service.8');
  for (const heading of ['HTTP PROTOCOL', 'CACHE LAYOUT', 'DEPLOYMENT', 'EXAMPLES']) t.match(page, new RegExp(`^\\.SH "?${heading}"?$`, 'm'));
  const examples = page.slice(page.indexOf('.SH EXAMPLES'));
  t.match(examples, /^\[Service\]$/m, 'systemd unit');
  t.match(examples, /^ExecStart=\/usr\/bin\/pkgtorrent .*serve$/m);
  t.match(examples, /^[\d*]+ [\d*]+ \* \* [\d*]+ +\S+ +pkgtorrent .*hash/m, 'cron line for hash');
  t.match(examples, /^[\d*]+ [\d*]+ \* \* [\d*]+ +\S+ +pkgtorrent .*cache clean/m, 'cron line for cache clean');
  t.match(examples, /^ProxyPass +"\/pub\/torrent_service\/" "http:\/\/127\.0\.0\.1:8080\/pub\/torrent_service\/"/m, 'Apache');
  t.match(examples, /^location ~ \^\/\[\^\/\]\+\/torrent_service\/ \{$/m, 'nginx location for every prefix');
  t.match(examples, /^ {4}proxy_pass http:\/\/127\.0\.0\.1:8080;$/m);
  for (const route of ['/digest/', '/simple/', '/nullfile/']) t.ok(page.includes(route), route);
  for (const status of ['200', '400', '403', '404', '405', '412', '413', '503']) t.match(page, new RegExp(`^\\.B ${status}$`, 'm'), `status ${status}`);
});
