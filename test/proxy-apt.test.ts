// apt end to end through the proxy: a small Debian repository (dpkg-deb,
// apt-ftparchive) served by `pkgtorrent serve --files`; `apt-get update` and
// `apt-get install --download-only` in an isolated apt state with
// Acquire::http::Proxy pointing at the proxy. The large package goes through
// BitTorrent (the engine, its pieces from the mirror: no tracker here), the
// small one and the metadata go direct, and the bytes apt keeps are the
// repository's.
import t from 'tap';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratch } from './helpers/clients.js';
import { need, needBtEngine } from './helpers/oracles.js';
import { startServe } from './helpers/server.js';
import { startTestProxy } from './helpers/proxy.js';

function makeDeb(work: string, name: string, payload: Buffer, out: string): void {
  const pkg = join(work, name);
  mkdirSync(join(pkg, 'DEBIAN'), { recursive: true });
  mkdirSync(join(pkg, 'usr/share', name), { recursive: true });
  writeFileSync(join(pkg, 'usr/share', name, 'blob'), payload);
  writeFileSync(
    join(pkg, 'DEBIAN/control'),
    `Package: ${name}\nVersion: 1.0\nArchitecture: all\nMaintainer: Test <test@example.invalid>\nDescription: ${name} test package\n`,
  );
  // -Znone: the random payload would not compress anyway, and it keeps the .deb's size predictable.
  execFileSync('dpkg-deb', ['--root-owner-group', '-Znone', '--build', pkg, out], { stdio: 'ignore' });
}

t.test('apt-get update and install --download-only through the proxy', async (t) => {
  if (!needBtEngine(t) || !need(t, 'dpkg-deb') || !need(t, 'apt-ftparchive') || !need(t, 'apt-get')) return;
  const dir = scratch(t, 'apt');
  const repo = join(dir, 'root/debian');
  const arch = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
  mkdirSync(join(repo, 'pool/main'), { recursive: true });
  mkdirSync(join(repo, `dists/stable/main/binary-${arch}`), { recursive: true });
  makeDeb(join(dir, 'build'), 'bigpkg', randomBytes(1_500_000), join(repo, 'pool/main/bigpkg_1.0_all.deb'));
  makeDeb(join(dir, 'build'), 'smallpkg', randomBytes(10_000), join(repo, 'pool/main/smallpkg_1.0_all.deb'));
  const packages = execFileSync('apt-ftparchive', ['packages', 'pool'], { cwd: repo });
  writeFileSync(join(repo, `dists/stable/main/binary-${arch}/Packages`), packages);
  const release = execFileSync(
    'apt-ftparchive',
    ['-o', 'APT::FTPArchive::Release::Suite=stable', '-o', 'APT::FTPArchive::Release::Codename=stable', '-o', `APT::FTPArchive::Release::Architectures=${arch}`, '-o', 'APT::FTPArchive::Release::Components=main', 'release', 'dists/stable'],
    { cwd: repo },
  );
  writeFileSync(join(repo, 'dists/stable/Release'), release);

  mkdirSync(join(dir, 'cache'));
  const mirror = await startServe(t, { root: join(dir, 'root'), cacheDir: join(dir, 'cache'), files: true });
  const proxy = await startTestProxy(t, { minSize: 500_000 });

  // Every directory apt uses is private to the test; APT_CONFIG keeps the host's apt.conf.d out.
  const apt = join(dir, 'apt');
  for (const d of ['state/lists/partial', 'cache/archives/partial', 'etc/apt.conf.d', 'etc/preferences.d', 'etc/sources.list.d', 'etc/trusted.gpg.d']) mkdirSync(join(apt, d), { recursive: true });
  writeFileSync(join(apt, 'state/status'), '');
  writeFileSync(join(apt, 'etc/sources.list'), `deb [trusted=yes] ${mirror.url}/debian stable main\n`);
  writeFileSync(
    join(apt, 'apt.conf'),
    [
      `Dir::State "${apt}/state";`,
      `Dir::State::status "${apt}/state/status";`,
      `Dir::Cache "${apt}/cache";`,
      `Dir::Etc "${apt}/etc";`,
      `Dir::Etc::sourcelist "${apt}/etc/sources.list";`,
      `Dir::Etc::sourceparts "${apt}/etc/sources.list.d";`,
      `Dir::Etc::parts "${apt}/etc/apt.conf.d";`,
      `Dir::Etc::preferencesparts "${apt}/etc/preferences.d";`,
      `Dir::Etc::trustedparts "${apt}/etc/trusted.gpg.d";`,
      `Dir::Log "${apt}/log";`,
      `Acquire::http::Proxy "${proxy.url}/";`,
      'Acquire::Languages "none";',
      'APT::Sandbox::User "root";',
      'Debug::NoLocking "true";',
      '',
    ].join('\n'),
  );
  const env = { ...process.env, APT_CONFIG: join(apt, 'apt.conf'), DEBIAN_FRONTEND: 'noninteractive' };
  // Asynchronously: the proxy runs in this process and must answer meanwhile.
  const run = promisify(execFile);
  await run('apt-get', ['update'], { env, timeout: 120_000 });
  await run('apt-get', ['install', '-y', '--download-only', '--no-install-recommends', 'bigpkg', 'smallpkg'], { env, timeout: 120_000 });

  for (const name of ['bigpkg_1.0_all.deb', 'smallpkg_1.0_all.deb']) {
    t.ok(readFileSync(join(apt, 'cache/archives', name)).equals(readFileSync(join(repo, 'pool/main', name))), `${name}: apt's copy is the repository's`);
  }
  const bigSize = statSync(join(repo, 'pool/main/bigpkg_1.0_all.deb')).size;
  const big = await proxy.line(/bigpkg_1\.0_all\.deb 200 bittorrent/);
  t.match(big, new RegExp(`bytes=${bigSize} \\d+ms peers=0 mirror=${bigSize} store=0 `), 'the large package went through the engine, its pieces from the mirror (no tracker)');
  t.notMatch(big, /range=|fallback=/, 'no Range fallback');
  await proxy.line(/smallpkg_1\.0_all\.deb 200 direct\(small\)/);
  await proxy.line(/dists\/stable\/(InRelease|Release) \d+ direct /);
  t.notOk(proxy.log.some((l) => /dists\/.* (bittorrent|store) /.test(l)), 'metadata never through BitTorrent');
  t.comment(proxy.log.join('\n'));
  await mirror.waitFor(/simple\/debian\/pool\/main\/bigpkg_1\.0_all\.deb 200/);
});
