// The pkgtorrent program: global flags, one module per command, and the one
// place where errors become a line on stderr and an exit code.
import { Command, CommanderError, Option } from 'commander';
import { PkgError } from '../core/errors.js';
import { VERSION } from '../core/version.js';
import { loadCommands, type Register } from '../commands/index.js';
import { Context, GLOBAL_FLAGS, collect } from './context.js';
import type { Env } from './env.js';

export function buildProgram(ctx: Context, commands: readonly Register[]): Command {
  const program = new Command('pkgtorrent')
    .description('BitTorrent for package mirrors: torrents whose web seed is the mirror itself')
    .version(VERSION)
    .option('--debug', 'print stack traces of internal errors')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => ctx.env.stdout.write(s),
      writeErr: (s) => ctx.env.stderr.write(s),
      // Commander's own errors become our one-line form.
      outputError: (s, write) => write(`pkgtorrent: ${s.replace(/^error: /, '').trimEnd()}\n`),
    });
  for (const [key, flags, help] of GLOBAL_FLAGS) {
    const option = new Option(flags, help);
    program.addOption(key === 'allow-outside' ? option.argParser(collect) : option);
  }
  for (const register of commands) {
    const cmd = register(program, ctx);
    cmd.exitOverride().configureOutput(program.configureOutput());
  }
  return program;
}

/** Runs one command line; resolves to the exit code. Never throws. */
export async function run(env: Env): Promise<number> {
  const ctx = new Context(env);
  const program = buildProgram(ctx, await loadCommands(env.argv));
  try {
    await program.parseAsync(env.argv, { from: 'user' });
    return ctx.exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; every other parse error is bad usage.
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof PkgError) {
      env.stderr.write(`pkgtorrent: ${err.message}\n`);
      return err.exitCode;
    }
    const debug = env.argv.includes('--debug');
    const e = err as Error;
    env.stderr.write(`pkgtorrent: internal error: ${e?.message ?? String(err)}\n`);
    if (debug && e?.stack) env.stderr.write(e.stack + '\n');
    return 1;
  }
}
