// `pkgtorrent cache clean` and `pkgtorrent cache stats`: the operator's view
// of the cache dir, safe to run while `serve` and `hash` use it.
import { Command, Option } from '@commander-js/extra-typings';
import { stat } from 'node:fs/promises';
import type { AnyCommand, Context } from '../cli/context.js';
import { PkgError, fsError } from '../core/errors.js';
import { cleanCache, REMOVAL_REASONS, type CleanResult } from '../core/cache-clean.js';
import { cacheStats, KINDS, type CacheStats } from '../core/cache-stats.js';
import { fallbackCacheDir } from '../core/cache-dir.js';
import { parseDuration, formatBytes } from '../core/size.js';
import { formatTable, plural } from '../cli/text.js';
import { settingOption } from '../cli/setting-options.js';
import { withRunMetrics, type RunFigure } from '../core/metrics-file.js';

const CLEAN_USAGE = `
Removes from the cache dir:
  - piece and info entries not used for --older-than (use time is a piece
    entry's atime, an info entry's mtime, refreshed at most once a day when
    the entry is used);
  - entries whose source file is gone or has another size or mtime (only when
    a root is set with --root, PKGTORRENT_ROOT or the config file, so a clean
    run from the wrong directory cannot empty the cache);
  - corrupt entries, which readers already ignore;
  - temporary files and locks of interrupted writes older than --leftover-age;
  - directories left empty.
Safe while serve and hash run on the same cache dir. Never follows a symlink
and never removes anything outside the cache dir. Exits 1 when something
could not be removed.

Examples:
  pkgtorrent cache clean --root /srv/mirror --dry-run
  # cron, every Sunday: quiet unless something failed; figures for node_exporter
  30 4 * * 0  pkgtorrent cache clean --root /srv/mirror --older-than 60d --quiet \\
                --metrics-file /var/lib/prometheus/node-exporter/`;

const STATS_USAGE = `
Counts the files of the cache dir by kind (piece entries, info entries,
temporary files, locks, other files) with their size and oldest and newest use
time. Reads no entry, so it is cheap on a large cache.`;

export function register(program: Command, ctx: Context): AnyCommand {
  const cache = program.command('cache').description('clean the piece and info caches, or show what they hold');

  cache
    .command('clean')
    .description('remove unused, stale and corrupt cache entries and leftovers of interrupted writes')
    .addOption(new Option('--older-than <duration>', 'remove entries not used for this long (s, m, h, d, w)').default('30d'))
    .addOption(new Option('--leftover-age <duration>', 'remove temporary files and locks older than this').default('1h'))
    .option('-n, --dry-run', 'list what would be removed, remove nothing')
    .option('--json', 'print the result as JSON')
    .option('-v, --verbose', 'list every removed file')
    .addOption(new Option('-q, --quiet', 'print nothing unless something failed').conflicts(['json', 'verbose']))
    .addOption(settingOption('metrics-file'))
    .addHelpText('after', CLEAN_USAGE)
    .action(async (opts, cmd) => {
      const olderThanMs = parseDuration(opts.olderThan, '--older-than');
      const leftoverAgeMs = parseDuration(opts.leftoverAge, '--leftover-age');
      const settings = await ctx.resolve(cmd, { 'metrics-file': opts.metricsFile });
      const run = async () => {
        const root = settings.sources.root === 'default' ? null : await ctx.root(cmd);
        const cacheDir = await cacheDirToInspect(ctx, cmd);
        return cleanCache({ cacheDir, olderThanMs, leftoverAgeMs, root, dryRun: !!opts.dryRun });
      };
      // A dry run removes nothing: it leaves the last real run's metrics file alone.
      const metricsFile = opts.dryRun ? undefined : settings.values['metrics-file'];
      const result = await withRunMetrics({ cwd: ctx.env.cwd, path: metricsFile, command: 'cache-clean', job: 'cache_clean', failed: (line) => void ((ctx.exitCode = 1), ctx.warn(line)) }, run, cleanFigures);
      for (const e of result.errors) ctx.warn(`${e.path}: ${e.message}`);
      if (opts.json) ctx.out(JSON.stringify(result));
      else {
        if (opts.dryRun || opts.verbose) {
          for (const r of result.removed) ctx.out(`${opts.dryRun ? 'would remove' : 'removed'} ${r.path} (${describe(r)})`);
        }
        if (!opts.quiet || result.errors.length) ctx.out(cleanSummary(result));
      }
      if (result.errors.length) ctx.exitCode = 1;
    });

  cache
    .command('stats')
    .description('count cache entries by kind, with bytes and oldest use')
    .option('--json', 'print the counts as JSON')
    .addHelpText('after', STATS_USAGE)
    .action(async (opts, cmd) => {
      const stats = await cacheStats(await cacheDirToInspect(ctx, cmd, true));
      if (opts.json) ctx.out(JSON.stringify(stats));
      else for (const line of statsTable(stats)) ctx.out(line);
    });

  return cache;
}

/**
 * The cache dir to clean or count. The default goes through the same choice
 * (and fallback) as the commands that fill the cache, so a user sees the
 * cache their own commands use. A dir given explicitly must exist, but need
 * not be writable at its top: stats only reads, and clean reports what it
 * could not remove. Neither creates a dir that was mistyped, and stats,
 * which only reads, creates nothing at all: of the default dir and its
 * fallback it counts the one that exists.
 */
async function cacheDirToInspect(ctx: Context, cmd: AnyCommand, readOnly = false): Promise<string> {
  const s = await ctx.resolve(cmd);
  if (s.sources['cache-dir'] === 'default') {
    if (!readOnly) return ctx.cacheDir(cmd);
    const isDir = (d: string) => stat(d).then((st) => st.isDirectory(), () => false);
    const dflt = s.values['cache-dir'];
    if (await isDir(dflt)) return dflt;
    const fallback = fallbackCacheDir(ctx.env.vars);
    return (await isDir(fallback)) ? fallback : dflt;
  }
  const dir = s.values['cache-dir'];
  let st;
  try {
    st = await stat(dir);
  } catch (e) {
    const err = fsError(e, dir);
    throw new PkgError(err.kind, `cache dir ${err.message}`);
  }
  if (!st.isDirectory()) throw new PkgError('usage', `cache dir ${dir}: not a directory`);
  return dir;
}

/** --metrics-file: what a clean run did. Anything it could not remove makes it unsuccessful. */
function cleanFigures(r: CleanResult): { ok: boolean; figures: RunFigure[] } {
  const removed = 'what the last run removed: piece and info entries, leftovers of interrupted writes, empty directories';
  return {
    ok: r.errors.length === 0,
    figures: [
      { name: 'last_run_removed', help: removed, labels: { kind: 'entries' }, value: r.entries },
      { name: 'last_run_removed', help: removed, labels: { kind: 'leftovers' }, value: r.leftovers },
      { name: 'last_run_removed', help: removed, labels: { kind: 'dirs' }, value: r.dirs },
      { name: 'last_run_freed_bytes', help: 'bytes the last run freed', value: r.bytes },
      { name: 'last_run_kept_entries', help: 'piece and info entries the last run left in place', value: r.kept },
      { name: 'last_run_errors', help: 'files the last run could not remove', value: r.errors.length },
    ],
  };
}

function describe(r: CleanResult['removed'][number]): string {
  const what = r.reason === 'empty-dir' ? 'empty directory' : r.reason.replace('-', ' ');
  return r.source ? `${what}: ${r.source}` : r.bytes ? `${what}, ${formatBytes(r.bytes)}` : what;
}

export function cleanSummary(r: CleanResult): string {
  const reasons = REMOVAL_REASONS.filter((x) => x !== 'empty-dir' && x !== 'leftover')
    .map((x) => [x, r.removed.filter((m) => m.reason === x && (m.kind === 'piece' || m.kind === 'info')).length] as const)
    .filter(([, n]) => n > 0)
    .map(([x, n]) => `${n} ${x.replace('-', ' ')}`);
  const parts = [
    `${plural(r.entries, 'entry', 'entries')}${reasons.length ? ` (${reasons.join(', ')})` : ''}`,
    plural(r.leftovers, 'leftover'),
    plural(r.dirs, 'empty directory', 'empty directories'),
  ];
  const verb = r.dryRun ? 'dry run: would remove' : 'removed';
  const freed = r.dryRun ? `${formatBytes(r.bytes)} would be freed` : `${formatBytes(r.bytes)} freed`;
  let line = `${verb} ${parts.join(', ')}; ${freed}; ${plural(r.kept, 'entry', 'entries')} kept`;
  if (!r.checkedSources) line += '; source files not checked (no --root)';
  if (r.errors.length) line += `; ${plural(r.errors.length, 'error')}`;
  return line;
}

function when(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
}

export function statsTable(s: CacheStats): string[] {
  const rows = [
    ['KIND', 'FILES', 'BYTES', 'OLDEST USE', 'NEWEST USE'],
    ...KINDS.map((k) => [k, String(s.kinds[k].files), formatBytes(s.kinds[k].bytes), when(s.kinds[k].oldestUseMs), when(s.kinds[k].newestUseMs)]),
    ['total', String(s.total.files), formatBytes(s.total.bytes), '', ''],
  ];
  const lines = [`cache dir ${s.cacheDir}`, ...formatTable(rows)];
  const lengths = Object.entries(s.pieceLengths).sort(([a], [b]) => Number(a) - Number(b));
  if (lengths.length) {
    lines.push(`piece entries by piece length: ${lengths.map(([pl, v]) => `${formatBytes(Number(pl))}: ${v.files}`).join(', ')}`);
  }
  if (s.skipped) lines.push(`${plural(s.skipped, 'symlink or special file')} left alone`);
  return lines;
}
