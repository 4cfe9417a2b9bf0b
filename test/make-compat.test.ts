// make as a mktorrent user and a mirror operator meet it: mktorrent's command
// line unchanged, -o as strict as mktorrent's, one meaning of the piece
// length, the service layout's paths and base URL, and the magnet link.
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli } from './helpers/cli.js';
import { need, ltInfo, mktorrentHash } from './helpers/oracles.js';
import { decodeTorrent } from './helpers/bencode.js';

const K = 1024;

t.test("mktorrent's -d, -t N and -v: the same command line gives mktorrent's info hash", async (t) => {
  if (!need(t, 'mktorrent') || !need(t, 'libtorrent')) return;
  const dir = t.testdir({ d: { a: randomBytes(300 * K + 7), sub: { b: randomBytes(5000) } } });
  const flags = ['-d', '-t', '2', '-v', '-a', 'http://t.example/announce', '-w', 'http://w.example/d/'];
  const theirs = mktorrentHash(join(dir, 'd'), 16, join(dir, 'm.torrent'), flags);
  const r = await cli(['make', '-l', '16', ...flags, '-o', 'p.torrent', 'd'], { cwd: dir });
  t.equal(r.code, 0, r.stderr);
  t.equal(ltInfo(join(dir, 'p.torrent')).infoHash, theirs);
  const ours = decodeTorrent(readFileSync(join(dir, 'p.torrent')));
  t.equal(ours['creation date'], undefined, '-d: no date');
  t.match(r.stderr, /^ {2}d\/a {2}300\.0 KiB\n {2}d\/sub\/b {2}4\.88 KiB\n$/, '-v lists the files');
  const both = await cli(['make', '-j', '1', '-t', '2', '-o', 'x.torrent', 'd'], { cwd: dir });
  t.equal(both.code, 2, '-j and -t are one setting');
  t.match(both.stderr, /^pkgtorrent: option .*cannot be used with option .*\n$/);
});

t.test('-o into a missing directory fails as mktorrent does: one line, nothing created', async (t) => {
  const dir = t.testdir({ f: 'x' });
  for (const force of [[], ['--force']]) {
    const r = await cli(['make', ...force, '-o', 'missing/x.torrent', 'f'], { cwd: dir });
    t.equal(r.code, 1);
    t.equal(r.stderr, `pkgtorrent: cannot write ${join(dir, 'missing/x.torrent')}: no such directory ${join(dir, 'missing')}\n`);
    t.same(readdirSync(dir), ['f'], 'no directory made');
  }
});

t.test('jobs 0 means one per core from flag, environment and config file', async (t) => {
  const dir = t.testdir({ f: randomBytes(100), 'c.conf': 'jobs = 0\n' });
  const flag = await cli(['make', '-j', '0', '-o', 'a.torrent', 'f'], { cwd: dir });
  t.equal(flag.code, 0, flag.stderr);
  const env = await cli(['make', '-o', 'b.torrent', 'f'], { cwd: dir, vars: { PKGTORRENT_JOBS: '0' } });
  t.equal(env.code, 0, env.stderr);
  const file = await cli(['--config', 'c.conf', 'config', '--json'], { cwd: dir });
  t.equal(file.code, 0, file.stderr);
  t.match(JSON.parse(file.stdout).settings.jobs, { value: 0, source: 'file' });
});

t.test('the piece length: one meaning from flag, environment and config file', async (t) => {
  const dir = t.testdir({ f: randomBytes(3 * 1024 * K), 'c.conf': 'piece-length = 128K\n' });
  const make = async (args: string[], vars: Record<string, string> = {}) => {
    const r = await cli(['make', '--json', '--force', '-o', 'x.torrent', ...args, 'f'], { cwd: dir, vars });
    t.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).pieceLength as number;
  };
  t.equal(await make([]), 256 * K, "nothing set: mktorrent's default");
  t.equal(await make([], { PKGTORRENT_PIECE_LENGTH: '64K' }), 64 * K, 'the environment');
  t.equal(await make(['--config', 'c.conf']), 128 * K, 'the config file');
  t.equal(await make(['--piece-length', '18'], { PKGTORRENT_PIECE_LENGTH: '64K' }), 256 * K, 'the flag: for make, an exponent too');
  t.equal(await make(['-l', '32K'], { PKGTORRENT_PIECE_LENGTH: '64K' }), 32 * K, '-l wins');
  const before = await cli(['--piece-length', '18', 'make', '--json', '--force', '-o', 'x.torrent', 'f'], { cwd: dir });
  t.equal(JSON.parse(before.stdout).pieceLength, 256 * K, 'before make: the same');

  for (const argv of [['hash', '--piece-length', '18'], ['--piece-length', '18', 'hash']]) {
    const r = await cli(argv, { cwd: dir });
    t.equal(r.code, 2);
    t.equal(r.stderr, "pkgtorrent: invalid piece length '18': must be at least 16K (a bare number is bytes; for 2^18 write 256K)\n");
  }
  const env = await cli(['config'], { cwd: dir, vars: { PKGTORRENT_PIECE_LENGTH: '18' } });
  t.equal(env.code, 2);
  t.match(env.stderr, /^pkgtorrent: PKGTORRENT_PIECE_LENGTH: .*for 2\^18 write 256K\)\n$/);
  const low = await cli(['make', '-l', '14', 'f'], { cwd: dir });
  t.equal(low.code, 2, "14 is below mktorrent's exponents");
  t.match(low.stderr, /from 15 \(32K\) to 28 \(256M\), as for mktorrent/);
});

t.test('the magnet link carries every web seed as ws=, percent-encoded', async (t) => {
  const dir = t.testdir({ f: 'x' });
  const r = await cli(['make', '--json', '-a', 'http://t.example/a', '-w', 'http://w1.example/a b/,https://w2.example/f?x=1', '-o', 'f.torrent', 'f'], { cwd: dir });
  t.equal(r.code, 0, r.stderr);
  const magnet = new URL(JSON.parse(r.stdout).magnet);
  t.same(magnet.searchParams.getAll('ws'), ['http://w1.example/a b/', 'https://w2.example/f?x=1']);
  t.same(magnet.searchParams.getAll('tr'), ['http://t.example/a']);
  t.notMatch(magnet.href, / /, 'encoded');
});

t.test('--layout service: paths percent-decoded and globbed as simple/ reads them; -w and directories refused', async (t) => {
  const dir = t.testdir({ root: { pub: { 'a b.rpm': randomBytes(70 * K), 'c+1.rpm': randomBytes(10), sub: {} } }, cache: {} });
  const base = ['make', '--layout', 'service', '--root', 'root', '--cache-dir', 'cache', '--trackers', 'none', '--json'];
  const r = await cli([...base, '--base-url', 'http://h.example', '-o', 'a.torrent', '/pub/a%20b.rpm', '/pub/c%2B1.rpm'], { cwd: dir });
  t.equal(r.code, 0, r.stderr);
  t.same(
    decodeTorrent(readFileSync(join(dir, 'a.torrent'))).info.files.map((f: { path: Buffer[] }) => f.path.map(String).join('/')),
    ['a b.rpm', `torrent_service/nullfile/${1024 * K - 70 * K}_0`, 'c+1.rpm'],
  );
  t.equal(new URL(JSON.parse(r.stdout).magnet).searchParams.get('ws'), 'http://h.example/', "ws= is the torrent's web seed");

  const one = await cli([...base, '--base-url', 'http://h.example', '-o', 'b.torrent', '/pub/a%20b.rpm'], { cwd: dir });
  t.equal(new URL(JSON.parse(one.stdout).magnet).searchParams.get('ws'), 'http://h.example/pub/');

  // A glob, as simple/ takes it: the same files as naming them.
  const glob = await cli([...base, '--base-url', 'http://h.example', '-o', 'g.torrent', '/pub/*.rpm'], { cwd: dir });
  t.equal(glob.code, 0, glob.stderr);
  t.ok(readFileSync(join(dir, 'g.torrent')).equals(readFileSync(join(dir, 'a.torrent'))), 'the glob gives the torrent of the files it matches');

  const root = join(dir, 'root').replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const refused: Array<[string[], number, RegExp]> = [
    [['-w', 'http://h.example/pub/', '/pub/c+1.rpm'], 2, /^pkgtorrent: -w is not taken with --layout service: give the mirror with --base-url URL/],
    [['--base-url', 'http://h', '/pub/*.deb'], 1, new RegExp(`^pkgtorrent: /pub/\\*\\.deb \\(under root ${root}\\): no files match\n$`)],
    [['--base-url', 'http://h', '/pub/sub'], 1, new RegExp(`^pkgtorrent: /pub/sub \\(under root ${root}\\): is a directory; ask for /pub/sub/\\* for its files\n$`)],
    [['--base-url', 'http://h', 'pub/missing.rpm'], 1, new RegExp(`^pkgtorrent: /pub/missing\\.rpm \\(under root ${root}\\): no such file or directory\n$`)],
    [['--base-url', 'http://h', '/pub/%zz'], 2, /^pkgtorrent: '\/pub\/%zz': malformed percent-encoding\n$/],
  ];
  for (const [args, code, msg] of refused) {
    const e = await cli([...base, ...args], { cwd: dir });
    t.equal(e.code, code, args.join(' '));
    t.match(e.stderr, msg);
  }
  t.notOk(existsSync(join(dir, 'c+1.rpm.torrent')));
});

t.test('a glob in the mktorrent layout is named as one', async (t) => {
  const dir = t.testdir({ 'a.iso': 'x' });
  const r = await cli(['make', '*.iso'], { cwd: dir });
  t.equal(r.code, 2);
  t.equal(r.stderr, 'pkgtorrent: *.iso: no such file or directory; make takes one file or directory, not a glob\n');
});

t.test('-o - refuses a terminal unless --force', async (t) => {
  const dir = t.testdir({ f: 'x' });
  const r = await cli(['make', '-o', '-', 'f'], { cwd: dir, tty: true });
  t.equal(r.code, 2);
  t.equal(r.stderr, 'pkgtorrent: -o -: stdout is a terminal; redirect it to a file or pipe (or use --force)\n');
  t.equal(r.stdout, '');
  const forced = await cli(['make', '-o', '-', '--force', 'f'], { cwd: dir, tty: true });
  t.equal(forced.code, 0, forced.stderr);
  t.equal(decodeTorrent(forced.stdoutBytes).info.name.toString(), 'f');
});

t.test('help lists the global flags a command honours', async (t) => {
  // The block after the heading, up to the blank line before the usage text.
  const globals = (text: string) => [...(text.split('Global Options:\n')[1]?.split('\n\n')[0] ?? '').matchAll(/^ {2}(--[a-z-]+)/gm)].map((m) => m[1]);
  const help = async (argv: string[]) => {
    const r = await cli([...argv, '--help']);
    t.equal(r.code, 0);
    return globals(r.stdout);
  };
  t.same(await help(['hash']), ['--debug', '--root', '--cache-dir', '--allow-outside', '--dotfiles', '--piece-length', '--config']);
  t.same(await help(['serve']), ['--debug', '--root', '--cache-dir', '--trackers', '--allow-outside', '--dotfiles', '--piece-length', '--config']);
  t.same(
    await help(['make']),
    ['--debug', '--root', '--cache-dir', '--trackers', '--allow-outside', '--dotfiles', '--config'],
    "make's own -l, --piece-length is listed with its options",
  );
  t.same(await help(['trackers', 'check']), ['--debug', '--trackers', '--config']);
  t.same(await help(['cache', 'clean']), ['--debug', '--root', '--cache-dir', '--allow-outside', '--dotfiles', '--config']);
  t.same(await help(['config']), ['--debug', '--root', '--cache-dir', '--trackers', '--allow-outside', '--dotfiles', '--piece-length', '--config']);
});

t.test('flags that exclude each other, and a duration message that names the units help names', async (t) => {
  const dir = t.testdir({ trackers: 'http://t.example/announce\n' });
  for (const argv of [
    ['cache', 'clean', '--quiet', '--verbose'],
    ['cache', 'clean', '--quiet', '--json'],
    ['hash', '--quiet', '--json'],
  ]) {
    const r = await cli(argv, { cwd: dir });
    t.equal(r.code, 2, argv.join(' '));
    t.match(r.stderr, /^pkgtorrent: option '-q, --quiet' cannot be used with option '(-v, --verbose|--json)'\n$/);
  }
  const help = await cli(['trackers', 'check', '--help']);
  t.match(help.stdout, /--timeout <duration> +how long to wait for each tracker \(ms, s, m\)/);
  const bad = await cli(['--trackers', 'trackers', 'trackers', 'check', '--offline', '--timeout', 'abc'], { cwd: dir });
  t.equal(bad.code, 2);
  t.equal(bad.stderr, "pkgtorrent: invalid --timeout 'abc': expected a number with a unit: ms, s, m, h, d or w (300ms, 5s, 30d)\n");
});
