// The named constructors of messages said in more than one place: their kind
// decides the exit code and HTTP status, and the places that say them do.
import t from 'tap';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bodyTooLarge, hiddenFile, outsideRoot, PkgError, requestCancelled } from '../src/core/errors.js';
import { globFiles, parseGlob } from '../src/core/glob.js';
import { MirrorRoot } from '../src/core/root.js';

t.test('each constructor: kind, exit code, HTTP status, message', async (t) => {
  const rows: Array<[PkgError, string, number, number, string]> = [
    [outsideRoot('pub/a.rpm'), 'forbidden', 1, 403, 'pub/a.rpm: resolves outside the root'],
    [hiddenFile('.git/config'), 'forbidden', 1, 403, '.git/config: hidden files are not part of the mirror'],
    [requestCancelled(), 'busy', 1, 503, 'request cancelled'],
    [bodyTooLarge(1024), 'too-large', 1, 413, 'request body over 1024 bytes'],
  ];
  for (const [err, kind, exit, status, message] of rows) {
    t.equal(err.kind, kind, message);
    t.equal(err.exitCode, exit);
    t.equal(err.httpStatus, status);
    t.equal(err.message, message);
  }
});

t.test('the root and the glob walk throw them', async (t) => {
  const dir = t.testdir({ root: { pub: { 'a.rpm': 'a' }, '.hidden': { 'x.rpm': 'x' } }, elsewhere: { 'b.rpm': 'b' } });
  const rootDir = join(dir, 'root');
  mkdirSync(join(rootDir, 'links'));
  symlinkSync(join(dir, 'elsewhere/b.rpm'), join(rootDir, 'links/b.rpm'));
  writeFileSync(join(rootDir, 'pub/c.rpm'), 'c');
  const root = await MirrorRoot.open(rootDir);
  t.throws(() => root.file('.hidden/x.rpm'), { kind: 'forbidden', message: hiddenFile('.hidden/x.rpm').message });
  t.throws(() => root.openFile(root.file('links/b.rpm')), { kind: 'forbidden', message: outsideRoot('links/b.rpm').message });
  // A refusal for leaving the root says so by a field, not only in words; other refusals of the same kind do not.
  const refusal = (() => {
    try {
      root.file('links/b.rpm');
    } catch (e) {
      return e;
    }
  })();
  t.ok(refusal instanceof PkgError && refusal.kind === 'forbidden' && refusal.reason === 'outside-root', 'reason outside-root');
  t.equal(hiddenFile('x').reason, undefined);
  await t.rejects(globFiles(root, parseGlob('pub/*'), { max: 10, signal: AbortSignal.abort() }), { kind: 'busy', message: requestCancelled().message });
});
