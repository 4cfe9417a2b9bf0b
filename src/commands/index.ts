// Every command of the binary, in the order `--help` lists them. A command
// module defines its flags and usage next to its code and returns its Command.
//
// Modules are loaded on demand: `make` should not pay for loading the HTTP
// service and its dependencies (about 0.1 s of a one-off run).
import type { Command } from '@commander-js/extra-typings';
import type { AnyCommand, Context, GLOBAL_SETTINGS } from '../cli/context.js';

export type Register = (program: Command, ctx: Context) => AnyCommand;

/** A global flag by the name of its setting (see GLOBAL_SETTINGS), or --config. */
export type GlobalFlag = (typeof GLOBAL_SETTINGS)[number] | 'config';

export interface CommandEntry {
  name: string;
  load: () => Promise<{ register: Register }>;
  /** The global flags the command honours: its --help lists these and no others. */
  globals: readonly GlobalFlag[];
}

const ALL: readonly GlobalFlag[] = ['root', 'allow-outside', 'dotfiles', 'cache-dir', 'trackers', 'piece-length', 'config'];

export const COMMANDS: CommandEntry[] = [
  { name: 'hash', load: () => import('./hash.js'), globals: ['root', 'allow-outside', 'dotfiles', 'cache-dir', 'piece-length', 'config'] },
  { name: 'make', load: () => import('./make.js'), globals: ALL },
  { name: 'cache', load: () => import('./cache.js'), globals: ['root', 'allow-outside', 'dotfiles', 'cache-dir', 'config'] },
  { name: 'trackers', load: () => import('./trackers.js'), globals: ['trackers', 'config'] },
  { name: 'config', load: () => import('./config.js'), globals: ALL },
  { name: 'serve', load: () => import('./serve.js'), globals: ALL },
  { name: 'proxy', load: () => import('./proxy.js'), globals: ['config'] },
  { name: 'fetch', load: () => import('./fetch.js'), globals: ['config'] },
];

export interface LoadedCommand {
  register: Register;
  globals: readonly GlobalFlag[];
}

/**
 * The commands a command line may run: those named anywhere in it (an
 * option value that happens to be a command name only loads one more
 * module), or all of them when none is named, for the program's help. A
 * bare `--version` needs none: loading them all took longer than a `make`.
 */
export async function loadCommands(argv: readonly string[]): Promise<LoadedCommand[]> {
  const named = COMMANDS.filter((c) => argv.includes(c.name));
  const version = argv.includes('--version') || argv.includes('-V');
  const chosen = named.length ? named : version ? [] : COMMANDS;
  return Promise.all(chosen.map(async (c) => ({ register: (await c.load()).register, globals: c.globals })));
}
