// Client globs (core/glob.ts): the matcher against a table, its cost on the
// patterns that made picomatch backtrack for seconds, and each option we pass
// to fast-glob shown to take effect on a real tree.
import t from 'tap';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PkgError } from '../src/core/errors.js';
import { MAX_GLOBSTARS, MAX_WILDCARDS, globFiles, globMatches, isGlob, parseGlob } from '../src/core/glob.js';
import { MirrorRoot } from '../src/core/root.js';

/** The kind of PkgError `fn` throws or rejects with, 'ok' when it does not. */
async function kindOf(fn: () => unknown): Promise<string> {
  try {
    await fn();
    return 'ok';
  } catch (e) {
    return e instanceof PkgError ? e.kind : String(e);
  }
}

t.test('matching', async (t) => {
  // [pattern, path, matches]
  const table: Array<[string, string, boolean]> = [
    ['pub/*.rpm', 'pub/a.rpm', true],
    ['pub/*.rpm', 'pub/a.deb', false],
    ['pub/*.rpm', 'pub/x/a.rpm', false],
    ['pub/?.rpm', 'pub/a.rpm', true],
    ['pub/?.rpm', 'pub/ab.rpm', false],
    ['pub/[ab].rpm', 'pub/b.rpm', true],
    ['pub/[!ab].rpm', 'pub/b.rpm', false],
    ['pub/[^ab].rpm', 'pub/c.rpm', true],
    ['pub/[a-c]x', 'pub/bx', true],
    ['pub/[a-c]x', 'pub/dx', false],
    ['pub/[]]x', 'pub/]x', true],
    ['pub/[x', 'pub/[x', true],
    ['pub/**', 'pub/a/b/c.rpm', true],
    ['pub/**/c.rpm', 'pub/c.rpm', true],
    ['pub/**/c.rpm', 'pub/a/b/c.rpm', true],
    ['pub/**/c.rpm', 'pub/a/b/d.rpm', false],
    ['**/*.rpm', 'a.rpm', true],
    ['pub/*a*a*a*b', 'pub/aaaaaaaaaab', true],
    ['pub/*a*a*a*b', 'pub/aaaaaaaaaaa', false],
    ['pub/{a,b}.rpm', 'pub/a.rpm', false],
    ['pub/{a,b}.rpm', 'pub/{a,b}.rpm', true],
    ['pub/+(a).rpm', 'pub/+(a).rpm', true],
    ['pub/é?.rpm', 'pub/éü.rpm', true],
  ];
  for (const [pattern, path, want] of table) t.equal(globMatches(parseGlob(pattern), path), want, `${pattern} ~ ${path}`);
  t.notOk(isGlob('pub/{a,b}/+(x)'), 'braces and extglobs are plain characters');
  t.ok(isGlob('pub/**'), '** is a glob');
});

t.test('cost: linear in pattern x name, and capped', async (t) => {
  // picomatch took seconds per name on these; here each is one pass per star.
  const name = 'a'.repeat(5000);
  const g = parseGlob(`pub/${'*?'.repeat(16)}Z`);
  t.notOk(globMatches(g, `pub/${name}`), '*?x16 against a 5000-character name answers');
  t.equal(await kindOf(() => parseGlob(`pub/${'*?'.repeat(MAX_WILDCARDS / 2 + 1)}`)), 'bad-request', 'too many wildcards');
  t.equal(await kindOf(() => parseGlob(Array.from({ length: MAX_GLOBSTARS + 1 }, () => '**').join('/'))), 'bad-request', "too many '**'");
});

t.test('fast-glob options take effect', async (t) => {
  const dir = t.testdir({
    root: {
      pub: {
        '{a,b}': { 'x.rpm': 'x' },
        a: { 'x.rpm': 'x' },
        '+(y)': { 'x.rpm': 'x' },
        y: { 'x.rpm': 'x' },
        '.hidden.rpm': 'h',
        'Upper.RPM': 'u',
        'lower.rpm': 'l',
      },
    },
    outside: { 'x.rpm': 'o' },
  });
  const rootDir = join(dir, 'root');
  symlinkSync('../../outside', join(rootDir, 'pub/linked'));
  const root = await MirrorRoot.open(rootDir);
  const files = (p: string, r = root) => globFiles(r, parseGlob(p), { max: 100 });

  t.same(await files('pub/{a,b}/*'), ['pub/{a,b}/x.rpm'], 'braceExpansion: false (braces are a literal name, not a/ and b/)');
  t.same(await files('pub/+(y)/*'), ['pub/+(y)/x.rpm'], 'extglob: false (+(y) is a literal name, not y/)');
  t.notOk((await files('pub/*')).includes('pub/.hidden.rpm'), 'dot: false by default');
  const dotted = await MirrorRoot.open(rootDir, { dotfiles: true });
  t.ok((await files('pub/*', dotted)).includes('pub/.hidden.rpm'), 'dot: true with the dotfiles setting');
  t.same(await files('pub/*.rpm'), ['pub/lower.rpm'], 'caseSensitiveMatch: true');
  t.notOk((await files('pub/**')).some((p) => p.startsWith('pub/linked/')), 'followSymbolicLinks: false (a linked directory is not walked)');
  t.equal(await kindOf(() => files('pub/linked/*')), 'forbidden', 'a pattern whose fixed part leads outside is refused before it is read');

  if (process.getuid?.() === 0) {
    t.pass('suppressErrors: false is checked without root privileges in serve-hostile-dos.test.ts');
  } else {
    mkdirSync(join(rootDir, 'pub/locked'), { mode: 0o000 });
    t.equal(await kindOf(() => files('pub/*/x.rpm')), 'forbidden', 'suppressErrors: false (an unreadable directory is an answer)');
  }
  const many = t.testdir({ pub: Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`f${i}.rpm`, 'x'])) });
  const r = await MirrorRoot.open(many);
  t.equal(await kindOf(() => globFiles(r, parseGlob('pub/*'), { max: 10 })), 'too-large', 'more matches than the cap');
  writeFileSync(join(many, 'pub/zz.rpm'), 'x');
  const stop = new AbortController();
  stop.abort();
  t.equal(await kindOf(() => globFiles(r, parseGlob('pub/*'), { max: 100, signal: stop.signal })), 'busy', 'a cancelled walk stops');
});
