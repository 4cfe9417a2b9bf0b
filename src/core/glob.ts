// Globs that anyone may send (simple mode): `*`, `?`, `[...]` within a name
// and `**` as a whole segment, nothing else. Braces and extglobs are plain
// characters: brace expansion multiplies patterns exponentially and could
// spell '..'.
//
// Matching is ours, not picomatch's, because picomatch compiles a glob to a
// backtracking RegExp: `*?*?*?*?*?*?*?*?*?Z` against two 40-character names
// took seconds of synchronous CPU, which no request timeout can interrupt.
// Here a name is matched in O(pattern x name) steps (the classic wildcard
// walk that backtracks only to the last `*`), and a pattern is capped in
// size, so a request costs time linear in what it walks. fast-glob still does
// the walking, from the pattern's fixed leading directory, given only plain
// `*` and `**` segments.
import fg from 'fast-glob';
import { realpathSync } from 'node:fs';
import { relative } from 'node:path';
import type { Readable } from 'node:stream';
import { PkgError, fsError, requestCancelled } from './errors.js';
import type { MirrorRoot } from './root.js';

/** Most wildcards (`*`, `?`, `[...]`) in one pattern; more is refused. */
export const MAX_WILDCARDS = 32;
/** Most `**` segments in one pattern. */
export const MAX_GLOBSTARS = 4;

type Token = { t: 'char'; c: string } | { t: 'any' } | { t: 'star' } | { t: 'class'; negated: boolean; ranges: Array<[string, string]> };
type Segment = { t: 'literal'; text: string } | { t: 'globstar' } | { t: 'wild'; tokens: Token[] };

export interface Glob {
  /** The pattern as given, root-relative without a leading slash. */
  source: string;
  segments: Segment[];
  /** The leading literal segments, where the walk starts ('' for the root). */
  base: string;
  /**
   * The rest as fast-glob walks it: every segment a plain `*` or `**`, so
   * no name of ours is ever read as glob syntax by it; ours filters after.
   */
  walk: string;
}

/** True when a root-relative path holds glob syntax; a literal name is tried before it is globbed. */
export function isGlob(rel: string): boolean {
  return rel.split('/').some((s) => s === '**' || tokenize(s).some((t) => t.t !== 'char'));
}

/** Parses a root-relative pattern; a pattern over the limits is a 'bad-request'. */
export function parseGlob(rel: string): Glob {
  let wildcards = 0;
  let globstars = 0;
  const segments: Segment[] = rel.split('/').map((s): Segment => {
    if (s === '**') {
      globstars++;
      return { t: 'globstar' };
    }
    const tokens = tokenize(s);
    const wild = tokens.filter((t) => t.t !== 'char').length;
    if (wild === 0) return { t: 'literal', text: s };
    wildcards += wild;
    return { t: 'wild', tokens };
  });
  if (wildcards > MAX_WILDCARDS) throw new PkgError('bad-request', `/${rel}: glob too complex (more than ${MAX_WILDCARDS} wildcards)`);
  if (globstars > MAX_GLOBSTARS) throw new PkgError('bad-request', `/${rel}: glob too complex (more than ${MAX_GLOBSTARS} '**')`);
  const fixed = segments.findIndex((s) => s.t !== 'literal');
  const base = rel.split('/').slice(0, fixed).join('/');
  const walk = segments
    .slice(fixed)
    .map((s) => (s.t === 'globstar' ? '**' : '*'))
    .join('/');
  return { source: rel, segments, base, walk };
}

/** Does a root-relative path (segments split on '/') match? */
export function globMatches(g: Glob, rel: string): boolean {
  const names = rel.split('/');
  const segs = g.segments;
  // ok[j] after row i: segs[0..i) can match names[0..j). Rows are pattern
  // segments, so the table is (segments x names), each cell one name match.
  let ok = names.map(() => false).concat(false);
  ok[0] = true;
  for (const seg of segs) {
    const next = ok.map(() => false);
    for (let j = 0; j <= names.length; j++) {
      if (seg.t === 'globstar') {
        // `**` takes zero or more whole names.
        next[j] = ok[j]! || (j > 0 && next[j - 1]!);
      } else if (j > 0 && ok[j - 1]) {
        const name = names[j - 1]!;
        next[j] = seg.t === 'literal' ? seg.text === name : matchName(seg.tokens, name);
      }
    }
    ok = next;
  }
  return ok[names.length]!;
}

/** One name against one segment's tokens, in O(tokens x characters). */
function matchName(tokens: readonly Token[], name: string): boolean {
  const s = Array.from(name);
  let ti = 0;
  let si = 0;
  let starAt = -1;
  let starSi = 0;
  while (si < s.length) {
    const tok = tokens[ti];
    if (tok && tok.t === 'star') {
      starAt = ti++;
      starSi = si;
    } else if (tok && matchChar(tok, s[si]!)) {
      ti++;
      si++;
    } else if (starAt >= 0) {
      // Let the last `*` take one more character and try again from there.
      ti = starAt + 1;
      si = ++starSi;
    } else {
      return false;
    }
  }
  while (tokens[ti]?.t === 'star') ti++;
  return ti === tokens.length;
}

function matchChar(tok: Token, c: string): boolean {
  switch (tok.t) {
    case 'char':
      return tok.c === c;
    case 'any':
      return true;
    case 'class': {
      const inside = tok.ranges.some(([lo, hi]) => c >= lo && c <= hi);
      return inside !== tok.negated;
    }
    case 'star':
      return false;
  }
}

/**
 * A name's tokens. `[` starts a class only when a `]` closes it (a leading
 * `]` or `!`/`^` belongs to the class); otherwise it is a plain character.
 */
function tokenize(segment: string): Token[] {
  const chars = Array.from(segment);
  const out: Token[] = [];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === '*') {
      // Runs of stars are one star: `**` inside a name means `*`.
      if (out.at(-1)?.t !== 'star') out.push({ t: 'star' });
    } else if (c === '?') {
      out.push({ t: 'any' });
    } else if (c === '[') {
      const cls = parseClass(chars, i);
      if (cls) {
        out.push(cls.token);
        i = cls.end;
      } else {
        out.push({ t: 'char', c });
      }
    } else {
      out.push({ t: 'char', c });
    }
  }
  return out;
}

function parseClass(chars: readonly string[], open: number): { token: Token; end: number } | null {
  let i = open + 1;
  const negated = chars[i] === '!' || chars[i] === '^';
  if (negated) i++;
  const ranges: Array<[string, string]> = [];
  const first = i;
  for (; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === ']' && i > first) return { token: { t: 'class', negated, ranges }, end: i };
    if (chars[i + 1] === '-' && chars[i + 2] !== undefined && chars[i + 2] !== ']') {
      ranges.push([c, chars[i + 2]!]);
      i += 2;
    } else {
      ranges.push([c, c]);
    }
  }
  return null;
}

/** Entries a walk may visit before it is refused: bounds the cost of `**` over a large mirror. */
export const MAX_VISITED = 200_000;

export interface GlobFilesOptions {
  /** Most matches; one more is 'too-large'. */
  max: number;
  /** Stops the walk (the client went away). */
  signal?: AbortSignal;
}

/**
 * Root-relative paths of the regular files and symlinks that match, sorted.
 * Nothing outside the mirror is listed: the walk starts at the pattern's
 * fixed leading directory, whose real path must be the mirror's, and never
 * follows a symlinked directory below it. Matched symlinks are resolved by
 * the caller like any path.
 */
export async function globFiles(root: MirrorRootLike, g: Glob, o: GlobFilesOptions): Promise<string[]> {
  if (o.signal?.aborted) throw requestCancelled();
  // The walk starts at the fixed part of the pattern, which must be the mirror's.
  let cwd = root.real;
  if (g.base !== '') {
    try {
      cwd = realpathSync.native(root.join(g.base));
    } catch (e) {
      throw fsError(e, `/${g.base}`);
    }
    root.admit(cwd, `/${g.base}`);
  }
  // fast-glob's stream is a Readable, typed only as NodeJS.ReadableStream.
  const stream = fg.stream(g.walk, {
    cwd,
    // Only `*` and `**` reach fast-glob; these keep it from reading more into them.
    braceExpansion: false,
    extglob: false,
    caseSensitiveMatch: true,
    dot: root.dotfiles,
    onlyFiles: false,
    objectMode: true,
    // Never walk through a symlinked directory: it may lead outside the root.
    followSymbolicLinks: false,
    // Only ENOENT (an entry gone while walking) is ignored: an unreadable directory is an answer.
    suppressErrors: false,
  }) as Readable;
  const prefix = g.base === '' ? '' : g.base + '/';
  // Our own directories (the cache dir) under the root are not walked into.
  const skip = root.hiddenUnder;
  const stop = () => stream.destroy();
  o.signal?.addEventListener('abort', stop, { once: true });
  const found: string[] = [];
  let visited = 0;
  try {
    for await (const e of stream as AsyncIterable<fg.Entry>) {
      if (++visited > MAX_VISITED) throw new PkgError('too-large', `/${g.source}: the glob walks more than ${MAX_VISITED} entries; narrow it`);
      if (!e.dirent.isFile() && !e.dirent.isSymbolicLink()) continue;
      const rel = prefix + e.path;
      if (skip.some((d) => rel === d || rel.startsWith(d + '/'))) continue;
      if (!globMatches(g, rel)) continue;
      found.push(rel);
      if (found.length > o.max) throw new PkgError('too-large', `/${g.source}: more than ${o.max} files match`, 'max-glob-matches');
    }
  } catch (e) {
    if (e instanceof PkgError) throw e;
    if (o.signal?.aborted) throw requestCancelled();
    const err = e as NodeJS.ErrnoException & { path?: string };
    throw fsError(err, err.path ? `/${relative(root.real, err.path)}` : `/${g.source}`);
  } finally {
    stream.destroy();
    o.signal?.removeEventListener('abort', stop);
  }
  if (o.signal?.aborted) throw requestCancelled();
  return found.sort();
}

/** What globFiles needs of a MirrorRoot (kept narrow so the glob has no other hold on it). */
export type MirrorRootLike = Pick<MirrorRoot, 'real' | 'dotfiles' | 'join' | 'admit' | 'hiddenUnder'>;
