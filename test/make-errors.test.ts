// Bad input to `pkgtorrent make`, through the real binary: exit code, exactly
// one line on stderr, and nothing written or left behind.
import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { bin, type CliResult } from './helpers/cli.js';

function oneLine(t: Test, r: CliResult, code: number, msg: RegExp): void {
  t.equal(r.code, code, `exit ${code}`);
  t.match(r.stderr, /^pkgtorrent: [^\n]+\n$/, `one line on stderr: ${JSON.stringify(r.stderr)}`);
  t.match(r.stderr, msg);
  t.equal(r.stdout, '', 'nothing on stdout');
}

/** Every file and directory under dir, recursively, to prove nothing appeared. */
function listing(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

t.test('missing path, empty directory, empty file, dangling link, bad piece lengths', async (t) => {
  const dir = t.testdir({ empty: {}, 'zero.bin': '', 'onlyempty': { a: '', b: { c: '' } }, 'f.bin': randomBytes(1000), out: {} });
  symlinkSync('nowhere', join(dir, 'dangling'));
  const before = listing(dir);
  const cases: Array<[string[], number, RegExp]> = [
    [['nope'], 1, /^pkgtorrent: nope: no such file or directory/],
    [['empty'], 1, /^pkgtorrent: empty: empty directory, nothing to put in a torrent/],
    [['zero.bin'], 1, /zero\.bin: empty file/],
    [['onlyempty'], 1, /onlyempty: every file is empty/],
    [['dangling'], 1, /dangling: dangling symbolic link/],
    [['-l', '100K', 'f.bin'], 2, /invalid piece length '100K': must be a power of two/],
    [['-l', '8K', 'f.bin'], 2, /must be at least 16K/],
    [['-l', '13', 'f.bin'], 2, /as an exponent it must be from 15/],
    [['-l', 'huge', 'f.bin'], 2, /invalid piece length 'huge'/],
    [['--piece-length', '3M', 'f.bin'], 2, /power of two/],
    [['-j', '1025', 'f.bin'], 2, /expected a number from 0 to 1024/],
    [['-w', 'not a url', 'f.bin'], 2, /-w 'not a url': not a URL/],
    // The trackers file's rules, so make cannot write a tracker serve would skip.
    [['-a', 'udp://t.example/announce', 'f.bin'], 2, /-a 'udp:\/\/t\.example\/announce': udp tracker without a port/],
    [['-a', 'ftp://t.example/announce', 'f.bin'], 2, /unsupported scheme 'ftp' \(use http, https, udp, ws or wss\)/],
    [['-n', 'a/b', 'f.bin'], 2, /invalid name 'a\/b'/],
    [['f.bin', 'zero.bin'], 2, /make takes one PATH/],
    [[], 2, /missing required argument 'path'/],
  ];
  for (const [args, code, msg] of cases) {
    const r = await bin(['make', '-o', join(dir, 'out/x.torrent'), ...args], { cwd: dir });
    t.test(args.join(' ') || '(no path)', async (t) => oneLine(t, r, code, msg));
  }
  t.same(listing(dir), before, 'no output, no temporary file');
});

t.test('an existing output is kept without --force', async (t) => {
  const dir = t.testdir({ 'f.bin': randomBytes(1000), 'f.bin.torrent': 'precious' });
  const before = listing(dir);
  for (const out of [[], ['-o', 'f.bin.torrent']]) {
    const r = await bin(['make', ...out, 'f.bin'], { cwd: dir });
    oneLine(t, r, 1, /f\.bin\.torrent: already exists \(use --force to replace it\)/);
  }
  t.equal(readFileSync(join(dir, 'f.bin.torrent'), 'utf8'), 'precious');
  t.same(listing(dir), before);
  const forced = await bin(['make', '--force', 'f.bin'], { cwd: dir });
  t.equal(forced.code, 0, forced.stderr);
  t.equal(readFileSync(join(dir, 'f.bin.torrent')).subarray(0, 1).toString(), 'd', 'replaced with --force');
  t.same(listing(dir), before, 'and nothing else');
});

t.test('an unreadable file is an error, not silently left out', async (t) => {
  const dir = t.testdir({ d: { 'a.bin': randomBytes(100), 'b.bin': randomBytes(100) }, out: {} });
  chmodSync(join(dir, 'd/b.bin'), 0o000);
  const before = listing(dir);
  const r = await bin(['make', '-o', join(dir, 'out/d.torrent'), 'd'], { cwd: dir, permissionsApply: true });
  oneLine(t, r, 1, /^pkgtorrent: d\/b\.bin: permission denied/);
  t.same(listing(dir), before);
});

t.test('a directory loop through a symlink is an error', async (t) => {
  const dir = t.testdir({ d: { sub: { f: 'x' } } });
  symlinkSync('..', join(dir, 'd/sub/up'));
  const r = await bin(['make', 'd'], { cwd: dir });
  oneLine(t, r, 1, /d\/sub\/up: symbolic link loop/);
  t.same(readdirSync(dir), ['d']);
});
