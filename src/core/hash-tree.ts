// The cron job's work: walk the root (or the files matching globs), find the
// files whose piece cache entry is missing or stale, and hash them, going on
// past a file that fails. Printing is the caller's.
import { lstatSync, readdir, readdirSync, realpathSync, statSync, type Dirent } from 'node:fs';
import { relative, sep } from 'node:path';
import { PkgError, fsError } from './errors.js';
import { withHashPool } from './hash-pool-run.js';
import { eachLimit } from './limit.js';
import { CACHED, LOOK, MISSING, checkEntry } from './entry-check.js';
import { FORMAT_VERSION, PieceCache, entryUseTimeMs, isCurrentEntry, refreshEntryUseSync } from './piece-cache.js';
import { PieceStore } from './piece-store.js';
import { MAX_NAME_BYTES, MAX_PATH_BYTES, isDotName, type MirrorFile, type MirrorRoot } from './root.js';

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
  const unreadableDir = (abs: string, err: NodeJS.ErrnoException) => {
    const rel = relative(o.root.real, abs) || '.';
    fail(rel, fsError(err, rel).message);
  };
  // An interrupt closes the pool, so a large file in flight stops too.
  return withHashPool(o.jobs, o.signal, async (pool) => {
    const cache = new PieceCache(o.cacheDir);
    const store = new PieceStore(cache, pool, {
      onCacheError: (rel, err) => fail(rel, `${rel}: cannot write cache entry: ${err.message}`),
    });
    // Never hash our own cache when it lives under the root, by any path.
    const root = o.root.hiding(o.cacheDir);
    let candidates: Candidate[];
    if (o.patterns.length === 0 && o.exclude.length === 0) {
      candidates = walkTree(root, new Set(root.hiddenUnder), unreadableDir);
    } else {
      const exclude = o.exclude.map(underRoot);
      const ignore = [...exclude, ...root.hiddenUnder.map((d) => `${d}/**`)];
      // Loaded only here: its start-up is a tenth of a second, a third of a warm run of the whole tree.
      const { default: fg } = await import('fast-glob');
      const names = await fg(o.patterns.length ? o.patterns.map(underRoot) : ['**'], {
        cwd: root.real,
        onlyFiles: true,
        // Hidden files are not part of the mirror unless the dotfiles setting says so (MirrorRoot refuses them too).
        dot: root.dotfiles,
        ignore,
        // A directory that cannot be read is reported and the walk goes on without it.
        fs: { readdir: reportingReaddir(unreadableDir) },
      });
      candidates = names.map((rel) => ({ rel, abs: null }));
    }
    if (o.patterns.length && candidates.length === 0) throw new PkgError('not-found', `no files match ${o.patterns.join(' ')} under ${o.root.dir}`);
    if (candidates.length === 0 && errors.length === 0) throw new PkgError('not-found', `no files to hash under ${o.root.dir}`);

    // First pass: what is stale, so the bar knows the total. A plain file
    // by the stats of it and its entry alone (see entry-check.ts); the rest,
    // and what that cannot settle, by a closer look (see freshness).
    const todo: MirrorFile[] = [];
    let filesCached = 0;
    const now = Date.now();
    for (let i = 0; i < candidates.length; i++) {
      // Let a signal in now and then: this pass runs in-line.
      if (i % 4096 === 4095) await new Promise(setImmediate);
      if (o.signal?.aborted) break;
      const c = candidates[i]!;
      const path = cache.entryPath(c.rel, o.pieceLength);
      const quick = c.abs === null ? LOOK : checkEntry(path, c.abs, o.pieceLength, now);
      if (quick === CACHED) {
        filesCached++;
        continue;
      }
      let verdict: MirrorFile | 'cached';
      try {
        verdict = quick === MISSING ? plainFile(root, c) : await freshness(root, cache, c, path, o.pieceLength, now);
      } catch (e) {
        // Skipped, never silently: a link out of the root is the usual sign of symlinked storage.
        const outside = e instanceof PkgError && e.reason === 'outside-root';
        fail(c.rel, `skipping ${(e as Error).message}${outside ? ' (--allow-outside DIR lets links lead into DIR)' : ''}`);
        continue;
      }
      if (verdict === 'cached') filesCached++;
      else todo.push(verdict);
    }
    // Hashed in path order, whatever order the walk found the files in.
    todo.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));

    const bar = o.progress(todo.reduce((s, f) => s + f.size, 0));
    let filesHashed = 0;
    let bytesHashed = 0;
    // Enough files in flight to keep every worker busy with small packages,
    // which go to workers in batches (see HashPool).
    await eachLimit(todo, o.jobs * 16, async (file) => {
      if (o.signal?.aborted) return;
      try {
        await store.hashAndStore(file, o.pieceLength, (n) => bar.add(n));
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
 * A file to look at: `abs` is set when the walk proved the path has no
 * symbolic link in it and lies in the root, outside our cache, with no hidden
 * or unusual name, so it needs no resolving; otherwise the root resolves
 * (and may refuse) it.
 */
interface Candidate {
  rel: string;
  abs: string | null;
}

/**
 * Lists the files under the root as fast-glob's '**' would (symbolic links
 * followed, hidden names only with dotfiles), reading each directory once
 * with its file types. Files reached without a link need no realpath later;
 * that was half a warm run's system calls.
 */
function walkTree(root: MirrorRoot, prune: ReadonlySet<string>, unreadable: (abs: string, err: NodeJS.ErrnoException) => void): Candidate[] {
  const out: Candidate[] = [];
  const visit = (absDir: string, relDir: string, plain: boolean, linked: ReadonlySet<string>) => {
    let entries: Dirent[];
    try {
      entries = readdirSync(absDir, { withFileTypes: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') unreadable(absDir, e as NodeJS.ErrnoException);
      return;
    }
    for (const d of entries) {
      const name = d.name;
      if (!root.dotfiles && isDotName(name)) continue;
      const rel = relDir === '' ? name : `${relDir}/${name}`;
      const abs = absDir + sep + name;
      if (d.isDirectory()) {
        if (!prune.has(rel)) visit(abs, rel, plain && usualName(name, rel), linked);
      } else if (d.isFile()) {
        out.push({ rel, abs: plain && usualName(name, rel) ? abs : null });
      } else if (d.isSymbolicLink()) {
        // A link to a file is resolved by the root; a link to a directory is
        // walked, once per real directory on the way down (a loop ends there).
        const st = statSync(abs, { throwIfNoEntry: false });
        if (st?.isFile()) out.push({ rel, abs: null });
        else if (st?.isDirectory()) {
          let real: string;
          try {
            real = realpathSync.native(abs);
          } catch {
            continue;
          }
          if (!linked.has(real)) visit(abs, rel, false, new Set([...linked, real]));
        }
      }
    }
  };
  visit(root.real, '', true, new Set([root.real]));
  return out;
}

/**
 * A name MirrorRoot accepts as it is (checkRelPath): no backslash, not
 * longer than a file system takes. The byte lengths are counted only when
 * the UTF-16 lengths leave any doubt (at most 3 bytes per unit).
 */
function usualName(name: string, rel: string): boolean {
  return (
    !name.includes('\\') &&
    (name.length * 3 <= MAX_NAME_BYTES || Buffer.byteLength(name) <= MAX_NAME_BYTES) &&
    (rel.length * 3 <= MAX_PATH_BYTES || Buffer.byteLength(rel) <= MAX_PATH_BYTES)
  );
}

/**
 * 'cached' when the file's entry is current, else the file to hash: the
 * closer look, for a file reached through a link or by a glob, or one whose
 * stats did not settle it (see checkEntry). Only an entry that exists and is
 * not current by its stat is read: a version 1 entry (valid, then rewritten
 * as version 2) or one on a file system whose times are coarser than the
 * source's.
 */
async function freshness(
  root: MirrorRoot,
  cache: PieceCache,
  c: Candidate,
  entryPath: string,
  pieceLength: number,
  now: number,
): Promise<MirrorFile | 'cached'> {
  const entry = lstatSync(entryPath, { throwIfNoEntry: false });
  const file = plainFile(root, c);
  if (!entry) return file;
  if (entry.isFile() && isCurrentEntry(entry, { size: file.size, mtimeMs: Number(file.mtimeNs) / 1e6 }, pieceLength)) {
    refreshEntryUseSync(entryPath, entryUseTimeMs(entry), file.mtimeNs, now);
    return 'cached';
  }
  const valid = await cache.read(c.rel, pieceLength, file);
  if (!valid) return file;
  if (valid.version < FORMAT_VERSION) {
    try {
      cache.write(c.rel, valid.pieces, now);
    } catch {
      // Still valid as it is; the next run tries again.
    }
  }
  return 'cached';
}

/**
 * The file with its exact stamp: by one lstat when the walk proved it plain
 * (see Candidate), else, and for a plain file replaced since the walk, as
 * the root resolves it (and may refuse it).
 */
function plainFile(root: MirrorRoot, { rel, abs }: Candidate): MirrorFile {
  if (abs === null) return root.file(rel);
  let st;
  try {
    st = lstatSync(abs, { bigint: true, throwIfNoEntry: false });
  } catch (e) {
    throw fsError(e, rel);
  }
  if (!st?.isFile()) return root.file(rel);
  return { rel, abs, root: root.real, size: Number(st.size), mtimeNs: st.mtimeNs };
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
