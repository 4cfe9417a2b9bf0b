// The pkgtorrent program: global flags, one module per command, and the one
// place where errors become a line on stderr and an exit code.
import { Command, CommanderError } from '@commander-js/extra-typings';
import { PkgError } from '../core/errors.js';
import { VERSION } from '../core/version.js';
import { loadCommands, type LoadedCommand } from '../commands/index.js';
import { configOption, Context, GLOBAL_SETTINGS } from './context.js';
import { camel, settingOption } from './setting-options.js';
import type { Env, OutStream } from './env.js';
import { watchOutput } from './output.js';

export function buildProgram(ctx: Context, commands: readonly LoadedCommand[]): Command {
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
  for (const key of GLOBAL_SETTINGS) program.addOption(settingOption(key));
  program.addOption(configOption());
  for (const { register, globals } of commands) {
    const cmd = register(program, ctx);
    // A command's help lists the global flags it honours, and only those.
    const shown = new Set(['debug', ...globals].map(camel));
    const help = {
      showGlobalOptions: true,
      visibleGlobalOptions: (c: Command) => program.options.filter((o) => shown.has(o.attributeName()) && !c.options.some((own) => own.long === o.long)),
    };
    for (const c of [cmd, ...cmd.commands]) c.exitOverride().configureOutput(program.configureOutput()).configureHelp(help);
  }
  return program;
}

/** Runs one command line; resolves to the exit code. Never throws. */
export async function run(env: Env): Promise<number> {
  const ctx = new Context(env);
  const stdout = watchOutput(env.stdout);
  let code: number;
  try {
    const program = buildProgram(ctx, await loadCommands(env.argv));
    await program.parseAsync(env.argv, { from: 'user' });
    code = ctx.exitCode;
  } catch (err) {
    code = await failure(env, err, () => stdout.failed());
  }
  // Whatever failed to reach stdout decides: a result the reader never got is no success.
  const lost = await stdout.settled();
  return lost ? outputLost(env.stderr, lost) : code;
}

async function failure(env: Env, err: unknown, stdoutFailed: () => boolean): Promise<number> {
  if (err instanceof CommanderError) {
    // Help and version exit 0; every other parse error is bad usage.
    return err.exitCode === 0 ? 0 : 2;
  }
  // An error caused by stdout going away is reported once, as that.
  if (stdoutFailed()) return 1;
  if (err instanceof PkgError) {
    env.stderr.write(`pkgtorrent: ${err.message}\n`);
    return env.signal?.aborted ? signalExitCode(env.signal) : err.exitCode;
  }
  const debug = env.argv.includes('--debug');
  const e = err as Error;
  env.stderr.write(`pkgtorrent: internal error: ${e?.message ?? String(err)}\n`);
  if (debug && e?.stack) env.stderr.write(e.stack + '\n');
  return 1;
}

/** 128 + the signal's number, as a shell reports a command a signal stopped. */
function signalExitCode(signal: AbortSignal): number {
  return signal.reason === 'SIGTERM' ? 143 : 130;
}

/**
 * The reader closed the pipe (`pkgtorrent config | head -1`): that is its
 * choice, so nothing is printed, and the exit code is the one a shell shows
 * for a writer stopped by SIGPIPE. Any other failure (a full disk) is one line.
 */
function outputLost(stderr: OutStream, err: NodeJS.ErrnoException): number {
  if (err.code === 'EPIPE') return 141;
  const reason = err.code === 'ENOSPC' ? 'no space left on device' : err.message.replace(/^[A-Z]+: /, '').replace(/, write$/, '');
  stderr.write(`pkgtorrent: cannot write to stdout: ${reason}\n`);
  return 1;
}
