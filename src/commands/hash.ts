// `pkgtorrent hash [PATTERN...]`: the cron job that pre-fills the piece cache,
// so the service rarely hashes on a request.
import { Command, Option } from '@commander-js/extra-typings';
import type { AnyCommand, Context } from '../cli/context.js';
import { collect, settingOption } from '../cli/setting-options.js';
import { byteProgress } from '../cli/progress.js';
import { plural } from '../cli/text.js';
import { defaultJobs } from '../core/hasher.js';
import { hashTree, type HashSummary } from '../core/hash-tree.js';
import { formatBytes } from '../core/size.js';
import { withRunMetrics, type RunFigure } from '../core/metrics-file.js';

const USAGE = `
Walks the root (or the files matching PATTERNs, globs relative to the root;
/pub/x.iso, as serve and make write paths, is under the root too) and hashes every file whose piece cache entry is missing or stale. A second
run over an unchanged tree hashes nothing. A file that cannot be read or
changes while it is hashed is reported, not cached; the run goes on and exits
1 at the end.

Examples:
  pkgtorrent hash --root /srv/mirror
  pkgtorrent hash --root /srv/mirror 'fedora/**/*.rpm' --exclude '**/debug/**'
  # cron, every night: quiet unless something failed; figures for node_exporter
  15 3 * * *  pkgtorrent hash --root /srv/mirror --quiet --metrics-file /var/lib/prometheus/node-exporter/`;

export function register(program: Command, ctx: Context): AnyCommand {
  return program
    .command('hash')
    .description('fill the piece cache for the mirror (cron job)')
    .argument('[pattern...]', 'globs relative to the root (default: every file)')
    .option('--exclude <pattern>', 'skip files matching this glob (repeatable)', collect, [])
    .addOption(new Option('-j, --jobs <n>', 'hash worker threads, 0 for one per core (default)'))
    .option('--json', 'print the summary as JSON')
    .addOption(new Option('-q, --quiet', 'print nothing unless a file failed').conflicts('json'))
    .addOption(settingOption('metrics-file'))
    .addHelpText('after', USAGE)
    .action(async (patterns, opts, cmd) => {
      const settings = await ctx.resolve(cmd, { jobs: opts.jobs, 'metrics-file': opts.metricsFile });
      // A run that fails (no root, a signal) writes its metrics file too, as unsuccessful.
      const run = async () =>
        hashTree({
          root: await ctx.root(cmd),
          cacheDir: await ctx.cacheDir(cmd),
          pieceLength: settings.values['piece-length'],
          jobs: settings.values.jobs || defaultJobs(),
          patterns,
          exclude: opts.exclude,
          signal: ctx.env.signal,
          warn: (line) => ctx.warn(line),
          progress: (total) => byteProgress(ctx.env.stderr, total, 'hashing'),
        });
      const summary = await withRunMetrics({ cwd: ctx.env.cwd, path: settings.values['metrics-file'], command: 'hash', job: 'hash', failed: (line) => void ((ctx.exitCode = 1), ctx.warn(line)) }, run, hashFigures);
      if (opts.json) ctx.out(JSON.stringify(summary));
      else if (!opts.quiet || summary.errors.length) ctx.out(summaryLine(summary));
      if (summary.errors.length) ctx.exitCode = 1;
    });
}

/** --metrics-file: what a hash run did. Files that failed make it unsuccessful. */
function hashFigures(s: HashSummary): { ok: boolean; figures: RunFigure[] } {
  const files = 'files of the last run: hashed, or found already cached';
  return {
    ok: s.errors.length === 0,
    figures: [
      { name: 'last_run_files', help: files, labels: { result: 'hashed' }, value: s.filesHashed },
      { name: 'last_run_files', help: files, labels: { result: 'cached' }, value: s.filesCached },
      { name: 'last_run_hashed_bytes', help: 'bytes the last run hashed', value: s.bytesHashed },
      { name: 'last_run_errors', help: 'files the last run could not hash', value: s.errors.length },
    ],
  };
}

export function summaryLine(s: HashSummary): string {
  return (
    `hashed ${plural(s.filesHashed, 'file')}, ${s.filesCached} already cached, ` +
    `${formatBytes(s.bytesHashed)} in ${s.seconds.toFixed(1)}s (${formatBytes(s.bytesPerSecond)}/s), ` +
    plural(s.errors.length, 'error')
  );
}
