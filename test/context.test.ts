// Context.resolve: the settings of one run, resolved once, from the global
// flags and a command's own flags of settings.
import t from 'tap';
import { PassThrough } from 'node:stream';
import { Command } from '@commander-js/extra-typings';
import { Context, GLOBAL_SETTINGS } from '../src/cli/context.js';
import { settingOption } from '../src/cli/setting-options.js';

function setup(argv: string[]) {
  const ctx = new Context({ argv, cwd: '/tmp', vars: {}, stdout: new PassThrough(), stderr: new PassThrough(), defaultConfigFile: '/nonexistent/pkgtorrent.conf' });
  const program = new Command('p').exitOverride();
  for (const key of GLOBAL_SETTINGS) program.addOption(settingOption(key));
  let seen: Command | undefined;
  program
    .command('x')
    .addOption(settingOption('port'))
    .action((_opts, cmd) => {
      seen = cmd;
    });
  program.parse(argv, { from: 'user' });
  return { ctx, cmd: seen! };
}

t.test('global flags and a command flag both count; a repeated flag is a list', async (t) => {
  const { ctx, cmd } = setup(['--root', 'r', '--allow-outside', '/a', '--allow-outside', '/b', 'x', '--port', '9']);
  const s = await ctx.resolve(cmd, { port: (cmd.opts() as { port?: string }).port });
  t.equal(s.values.root, '/tmp/r');
  t.same(s.values['allow-outside'], ['/a', '/b']);
  t.equal(s.values.port, 9);
  t.equal(s.sources.port, 'flag');
});

t.test('a later call gets the same settings; one that brings flags of its own is an error, not ignored', async (t) => {
  const { ctx, cmd } = setup(['x']);
  const first = await ctx.resolve(cmd, { jobs: '3' });
  t.equal(await ctx.resolve(cmd), first, 'resolved once');
  t.equal(await ctx.resolve(cmd, { jobs: undefined }), first, 'an absent flag brings nothing');
  await t.rejects(ctx.resolve(cmd, { port: '9' }), /settings resolved before --port was given/);
  t.equal(first.values.jobs, 3);
});
