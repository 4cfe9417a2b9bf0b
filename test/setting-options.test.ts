// settingFlags: a command's options of settings, found under the name
// commander gives each from its flag, and repeated flags joined into the list
// text the config file spells, with each setting's own separator.
import t from 'tap';
import { PassThrough } from 'node:stream';
import { Command } from '@commander-js/extra-typings';
import { Context } from '../src/cli/context.js';
import { settingFlags, settingOption } from '../src/cli/setting-options.js';
import type { SettingKey } from '../src/core/config.js';

function parse(keys: readonly SettingKey[], argv: string[]) {
  const cmd = new Command('x').exitOverride();
  for (const key of keys) cmd.addOption(settingOption(key));
  cmd.parse(argv, { from: 'user' });
  return cmd;
}

t.test('a setting whose flag is not its key is found by its flag', async (t) => {
  const cmd = parse(['proxy-host', 'proxy-port'], ['--host', '0.0.0.0', '--port', '9']);
  t.same(settingFlags(cmd.opts(), ['proxy-host', 'proxy-port']), { 'proxy-host': '0.0.0.0', 'proxy-port': '9' });
});

t.test('a value lands only under the keys asked for: serve and the proxy share --host', async (t) => {
  const cmd = parse(['host'], ['--host', '::1']);
  t.same(settingFlags(cmd.opts(), ['host']), { host: '::1' });
  t.same(settingFlags(cmd.opts(), ['proxy-host']), { 'proxy-host': '::1' }, 'the same flag, asked for as the other key');
  t.same(settingFlags(cmd.opts(), ['port', 'jobs']), {}, 'absent flags bring nothing');
});

t.test('repeated flags: URLs joined by commas, paths by colons, as the config file lists them', async (t) => {
  const keys = ['mirror', 'allow-host', 'allow-outside'] as const;
  const cmd = parse(keys, ['--mirror', 'a=http://m:81/a', '--mirror', 'b=https://n/b', '--allow-host', 'm', '--allow-host', 'n', '--allow-outside', '/x', '--allow-outside', '/y']);
  const flags = settingFlags(cmd.opts(), keys);
  t.same(flags, { mirror: 'a=http://m:81/a,b=https://n/b', 'allow-host': 'm,n', 'allow-outside': '/x:/y' });
  const ctx = new Context({ argv: [], cwd: '/tmp', vars: {}, stdout: new PassThrough(), stderr: new PassThrough(), defaultConfigFile: '/nonexistent/pkgtorrent.conf' });
  const s = (await ctx.resolve(cmd, flags)).values;
  t.same(s.mirror, ['a=http://m:81/a', 'b=https://n/b'], 'the colons of a URL stay in it');
  t.same(s['allow-host'], ['m', 'n']);
  t.same(s['allow-outside'], ['/x', '/y']);
});
