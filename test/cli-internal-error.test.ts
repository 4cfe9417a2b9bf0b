// run() is the one place where errors become a line on stderr and an exit
// code. An error that is not a PkgError is a bug of ours: the user gets one
// line saying so, and the stack only when they asked for it with --debug.
import t from 'tap';
import { PassThrough } from 'node:stream';
import { run } from '../src/cli/main.js';

/** Variables whose settings lookup fails the way a bug would: a TypeError, not a PkgError. */
function brokenVars(): Record<string, string | undefined> {
  return new Proxy<Record<string, string | undefined>>({}, {
    get(_target, key) {
      if (typeof key === 'string' && key.startsWith('PKGTORRENT_')) throw new TypeError('settings exploded');
      return undefined;
    },
  });
}

async function runBroken(argv: string[]): Promise<{ code: number; stderr: string; stdout: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  const chunks = { out: [] as Buffer[], err: [] as Buffer[] };
  out.on('data', (c: Buffer) => chunks.out.push(c));
  err.on('data', (c: Buffer) => chunks.err.push(c));
  const code = await run({ argv, cwd: process.cwd(), vars: brokenVars(), stdout: out, stderr: err, defaultConfigFile: '/nonexistent/pkgtorrent.conf' });
  return { code, stdout: Buffer.concat(chunks.out).toString(), stderr: Buffer.concat(chunks.err).toString() };
}

t.test('an internal error is one line and exit 1, with no stack', async (t) => {
  const r = await runBroken(['config']);
  t.equal(r.code, 1);
  t.equal(r.stderr, 'pkgtorrent: internal error: settings exploded\n');
  t.equal(r.stdout, '');
});

t.test('--debug adds the stack of that error after the line', async (t) => {
  const r = await runBroken(['--debug', 'config']);
  t.equal(r.code, 1);
  const [first, ...rest] = r.stderr.split('\n');
  t.equal(first, 'pkgtorrent: internal error: settings exploded');
  const stack = rest.join('\n');
  t.match(stack, /^TypeError: settings exploded\n\s+at /, 'the stack follows, starting with the error');
  t.match(stack, /cli-internal-error\.test\.ts/, 'and it names where the error was thrown');
});
