// The program as a whole: which command modules a command line loads, and
// the version, run in-process.
import t from 'tap';
import { PassThrough } from 'node:stream';
import { readFileSync } from 'node:fs';
import { run } from '../src/cli/main.js';
import { COMMANDS, loadCommands } from '../src/commands/index.js';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

async function runIn(argv: string[]) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => (out += d));
  stderr.on('data', (d) => (err += d));
  const code = await run({ argv, cwd: '/tmp', vars: {}, stdout, stderr, defaultConfigFile: '/nonexistent/pkgtorrent.conf' });
  return { code, out, err };
}

t.test('a command line loads the commands it names, all of them for help, none for a bare version', async (t) => {
  t.equal((await loadCommands(['make', '-o', 'x.torrent', 'dir'])).length, 1, 'make alone');
  t.equal((await loadCommands(['--help'])).length, COMMANDS.length, 'help lists every command');
  t.equal((await loadCommands([])).length, COMMANDS.length, 'so does no argument at all');
  t.equal((await loadCommands(['--version'])).length, 0, '--version');
  t.equal((await loadCommands(['-V'])).length, 0, '-V');
  t.equal((await loadCommands(['serve', '--version'])).length, 1, 'a named command still loads');
});

t.test('--version and -V print the package version and exit 0', async (t) => {
  for (const flag of ['--version', '-V']) {
    const r = await runIn([flag]);
    t.equal(r.code, 0, `${flag}: exit 0`);
    t.equal(r.out, `${pkg.version}\n`, `${flag}: the version`);
    t.equal(r.err, '', `${flag}: nothing on stderr`);
  }
});
