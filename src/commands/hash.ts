// `pkgtorrent hash [PATTERN...]`: the cron job that pre-fills the piece cache,
// so the service rarely hashes on a request.
import { Command, Option } from 'commander';
import fg from 'fast-glob';
import { collect, type Context } from '../cli/context.js';
import { byteProgress } from '../cli/progress.js';
import { plural } from '../cli/text.js';
import { PkgError } from '../core/errors.js';
import { HashPool, defaultJobs } from '../core/hasher.js';
import { eachLimit } from '../core/limit.js';
import { PieceCache } from '../core/piece-cache.js';
import { PieceStore } from '../core/piece-store.js';
import { MirrorRoot, type MirrorFile } from '../core/root.js';
import { formatBytes } from '../core/size.js';

const USAGE = `
Walks the root (or the files matching PATTERNs, globs relative to the root)
and hashes every file whose piece cache entry is missing or stale. A second
run over an unchanged tree hashes nothing. A file that cannot be read or
changes while it is hashed is reported, not cached; the run goes on and exits
1 at the end.

Examples:
  pkgtorrent hash --root /srv/mirror
  pkgtorrent hash --root /srv/mirror 'fedora/**/*.rpm' --exclude '**/debug/**'
  # cron, every night: quiet unless something failed
  15 3 * * *  pkgtorrent hash --root /srv/mirror --quiet`;

export interface HashSummary {
  filesHashed: number;
  filesCached: number;
  bytesHashed: number;
  seconds: number;
  bytesPerSecond: number;
  errors: Array<{ path: string; message: string }>;
}

export function register(program: Command, ctx: Context): Command {
  return program
    .command('hash')
    .description('fill the piece cache for the mirror (cron job)')
    .argument('[pattern...]', 'globs relative to the root (default: every file)')
    .option('--exclude <pattern>', 'skip files matching this glob (repeatable)', collect, [])
    .addOption(new Option('-j, --jobs <n>', 'hash worker threads (default: one per core)'))
    .option('--json', 'print the summary as JSON')
    .option('-q, --quiet', 'print nothing unless a file failed')
    .addHelpText('after', USAGE)
    .action(async (patterns: string[], opts: { exclude: string[]; jobs?: string; json?: boolean; quiet?: boolean }, cmd: Command) => {
      const settings = await ctx.resolve(cmd, { jobs: opts.jobs });
      const root = await ctx.root(cmd);
      const cacheDir = await ctx.cacheDir(cmd);
      const summary = await hashTree(ctx, {
        root,
        cacheDir,
        pieceLength: settings.values['piece-length'],
        jobs: settings.values.jobs || defaultJobs(),
        patterns,
        exclude: opts.exclude,
      });
      if (opts.json) ctx.out(JSON.stringify(summary));
      else if (!opts.quiet || summary.errors.length) ctx.out(summaryLine(summary));
      if (summary.errors.length) ctx.exitCode = 1;
    });
}

export function summaryLine(s: HashSummary): string {
  return (
    `hashed ${plural(s.filesHashed, 'file')}, ${s.filesCached} already cached, ` +
    `${formatBytes(s.bytesHashed)} in ${s.seconds.toFixed(1)}s (${formatBytes(s.bytesPerSecond)}/s), ` +
    plural(s.errors.length, 'error')
  );
}

interface HashTreeOptions {
  root: MirrorRoot;
  cacheDir: string;
  pieceLength: number;
  jobs: number;
  patterns: string[];
  exclude: string[];
}

async function hashTree(ctx: Context, o: HashTreeOptions): Promise<HashSummary> {
  const started = Date.now();
  const errors: HashSummary['errors'] = [];
  const fail = (path: string, message: string) => {
    errors.push({ path, message });
    ctx.warn(message);
  };
  const pool = new HashPool(o.jobs, { inline: true });
  const store = new PieceStore(new PieceCache(o.cacheDir), pool, {
    onCacheError: (rel, err) => fail(rel, `${rel}: cannot write cache entry: ${err.message}`),
  });
  try {
    // Never hash our own cache when it lives under the root.
    const cacheRel = await o.root.relativeInside(o.cacheDir);
    const ignore = cacheRel === null ? o.exclude : [...o.exclude, `${cacheRel}/**`];
    const names = await fg(o.patterns.length ? o.patterns : ['**'], {
      cwd: o.root.real,
      onlyFiles: true,
      // Hidden files are not part of the mirror unless the dotfiles setting says so (MirrorRoot refuses them too).
      dot: o.root.dotfiles,
      ignore,
      suppressErrors: true,
    });
    if (o.patterns.length && names.length === 0) throw new PkgError('not-found', `no files match ${o.patterns.join(' ')} under ${o.root.dir}`);
    names.sort();

    // First pass: what is stale, so the bar knows the total.
    const todo: MirrorFile[] = [];
    let filesCached = 0;
    await eachLimit(names, 16, async (name) => {
      let file: MirrorFile;
      try {
        file = o.root.file(name);
      } catch (e) {
        // Skipped, never silently: a link out of the root is the usual sign of symlinked storage.
        const outside = e instanceof PkgError && /resolves outside the root/.test(e.message);
        fail(name, `skipping ${(e as Error).message}${outside ? ' (--allow-outside DIR lets links lead into DIR)' : ''}`);
        return;
      }
      if (await store.cached(file, o.pieceLength)) filesCached++;
      else todo.push(file);
    });

    const total = todo.reduce((s, f) => s + f.size, 0);
    const bar = byteProgress(ctx.env.stderr, total, 'hashing');
    let filesHashed = 0;
    let bytesHashed = 0;
    // Enough files in flight to keep every worker busy with small packages.
    await eachLimit(todo, o.jobs * 4, async (file) => {
      if (ctx.env.signal?.aborted) return;
      try {
        await store.get(file, o.pieceLength, (n) => bar.add(n));
        filesHashed++;
        bytesHashed += file.size;
      } catch (e) {
        fail(file.rel, (e as Error).message);
      }
    });
    bar.stop();
    if (ctx.env.signal?.aborted) throw new PkgError('io', 'interrupted');
    const seconds = (Date.now() - started) / 1000;
    return { filesHashed, filesCached, bytesHashed, seconds, bytesPerSecond: bytesHashed / Math.max(seconds, 0.001), errors };
  } finally {
    await pool.close();
  }
}
