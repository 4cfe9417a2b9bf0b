// Every command of the binary, in the order `--help` lists them. A command
// module defines its flags and usage next to its code and returns its Command.
//
// Modules are loaded on demand: `make` should not pay for loading the HTTP
// service and its dependencies (about 0.1 s of a one-off run).
import type { Command } from 'commander';
import type { Context } from '../cli/context.js';

export type Register = (program: Command, ctx: Context) => Command;

export interface CommandEntry {
  name: string;
  load: () => Promise<{ register: Register }>;
}

export const COMMANDS: CommandEntry[] = [
  { name: 'hash', load: () => import('./hash.js') },
  { name: 'make', load: () => import('./make.js') },
  { name: 'cache', load: () => import('./cache.js') },
  { name: 'trackers', load: () => import('./trackers.js') },
  { name: 'config', load: () => import('./config.js') },
  { name: 'serve', load: () => import('./serve.js') },
  { name: 'proxy', load: () => import('./proxy.js') },
  { name: 'fetch', load: () => import('./fetch.js') },
];

/**
 * The commands a command line may run: those named anywhere in it (an
 * option value that happens to be a command name only loads one more
 * module), or all of them when none is named, for the program's help.
 */
export async function loadCommands(argv: readonly string[]): Promise<Register[]> {
  const named = COMMANDS.filter((c) => argv.includes(c.name));
  const chosen = named.length ? named : COMMANDS;
  return Promise.all(chosen.map(async (c) => (await c.load()).register));
}
