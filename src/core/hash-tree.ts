// The cron job's work: walk the root (or the files matching globs), find the
// files whose piece cache entry is missing or stale, and hash them, going on
// past a file that fails. Printing is the caller's.
import fg from 'fast-glob';
import { readdir } from 'node:fs';
import { relative } from 'node:path';
import { PkgError, fsError } from './errors.js';
import { withHashPool } from './hash-pool-run.js';
import { eachLimit } from './limit.js';
import { PieceCache } from './piece-cache.js';
import { PieceStore } from './piece-store.js';
import type { MirrorFile, MirrorRoot } from './root.js';

export interface HashSummary {
  filesHashed: number;
  filesCached: number;
  bytesHashed: number;
  seconds: number;
  bytesPerSecond: number;
  errors: Array<{ path: string; message: string }>;
}

export interface HashTreeOptions {
  root: MirrorRoot;
  cacheDir: string;
  pieceLength: number;
  jobs: number;
  patterns: string[];
  exclude: string[];
  signal?: AbortSignal;
  /** A line worth telling the user (a skipped file, a failure). */
  warn: (line: string) => void;
  /** Given the bytes to hash once they are known; returns where progress goes. */
  progress: (totalBytes: number) => { add(bytes: number): void; stop(): void };
}

// Paths are relative to the root; "/pub/x.iso", as serve and make write them, means the same.
const underRoot = (pattern: string) => pattern.replace(/^\/+/, '');

export async function hashTree(o: HashTreeOptions): Promise<HashSummary> {
  const started = Date.now();
  const errors: HashSummary['errors'] = [];
  const fail = (path: string, message: string) => {
    // After an interrupt, what failed is only the pool closing.
    if (o.signal?.aborted) return;
    errors.push({ path, message });
    o.warn(message);
  };
  // An interrupt closes the pool, so a large file in flight stops too.
  return withHashPool(o.jobs, o.signal, async (pool) => {
    const store = new PieceStore(new PieceCache(o.cacheDir), pool, {
      onCacheError: (rel, err) => fail(rel, `${rel}: cannot write cache entry: ${err.message}`),
    });
    // Never hash our own cache when it lives under the root.
    const cacheRel = await o.root.relativeInside(o.cacheDir);
    const exclude = o.exclude.map(underRoot);
    const ignore = cacheRel === null ? exclude : [...exclude, `${cacheRel}/**`];
    const names = await fg(o.patterns.length ? o.patterns.map(underRoot) : ['**'], {
      cwd: o.root.real,
      onlyFiles: true,
      // Hidden files are not part of the mirror unless the dotfiles setting says so (MirrorRoot refuses them too).
      dot: o.root.dotfiles,
      ignore,
      // A directory that cannot be read is reported and the walk goes on without it.
      fs: { readdir: reportingReaddir((abs, err) => fail(relative(o.root.real, abs) || '.', fsError(err, relative(o.root.real, abs) || '.').message)) },
    });
    if (o.patterns.length && names.length === 0) throw new PkgError('not-found', `no files match ${o.patterns.join(' ')} under ${o.root.dir}`);
    if (names.length === 0 && errors.length === 0) throw new PkgError('not-found', `no files to hash under ${o.root.dir}`);
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
      if (await store.lookup(file, o.pieceLength)) filesCached++;
      else todo.push(file);
    });

    const bar = o.progress(todo.reduce((s, f) => s + f.size, 0));
    let filesHashed = 0;
    let bytesHashed = 0;
    // Enough files in flight to keep every worker busy with small packages,
    // which go to workers in batches (see HashPool).
    await eachLimit(todo, o.jobs * 16, async (file) => {
      if (o.signal?.aborted) return;
      try {
        await store.get(file, o.pieceLength, (n) => bar.add(n));
        filesHashed++;
        bytesHashed += file.size;
      } catch (e) {
        fail(file.rel, (e as Error).message);
      }
    });
    bar.stop();
    const seconds = (Date.now() - started) / 1000;
    return { filesHashed, filesCached, bytesHashed, seconds, bytesPerSecond: bytesHashed / Math.max(seconds, 0.001), errors };
  });
}

/**
 * fs.readdir for fast-glob (its `fs` option) that reports a directory it
 * cannot read and answers it as empty, so the walk goes on: fast-glob can
 * only stop at the first error or hide them all.
 */
function reportingReaddir(report: (abs: string, err: NodeJS.ErrnoException) => void): typeof readdir {
  return ((path: string, options: unknown, callback: (err: NodeJS.ErrnoException | null, entries?: unknown) => void) =>
    readdir(path, options as { withFileTypes: true }, (err, entries) => {
      if (err && err.code !== 'ENOENT') {
        report(path, err);
        callback(null, []);
      } else callback(err, entries);
    })) as unknown as typeof readdir;
}
