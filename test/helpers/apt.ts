// apt against a local Debian repository: .deb packages built with dpkg-deb,
// the index and Release by apt-ftparchive, and apt-get run in a state of
// its own (APT_CONFIG keeps the host's apt.conf.d out) through a proxy.
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

export function makeDeb(work: string, name: string, payload: Buffer, out: string): void {
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

/**
 * A repository under `dir`/root/debian (suite stable, component main) with
 * one package per entry of `payloads` (NAME_1.0_all.deb in pool/main);
 * returns the repository's directory. Serve `dir`/root.
 */
export function makeAptRepo(dir: string, payloads: Record<string, Buffer>): string {
  const repo = join(dir, 'root/debian');
  const arch = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
  mkdirSync(join(repo, 'pool/main'), { recursive: true });
  mkdirSync(join(repo, `dists/stable/main/binary-${arch}`), { recursive: true });
  for (const [name, payload] of Object.entries(payloads)) makeDeb(join(dir, 'build'), name, payload, join(repo, `pool/main/${name}_1.0_all.deb`));
  const packages = execFileSync('apt-ftparchive', ['packages', 'pool'], { cwd: repo });
  writeFileSync(join(repo, `dists/stable/main/binary-${arch}/Packages`), packages);
  const release = execFileSync(
    'apt-ftparchive',
    ['-o', 'APT::FTPArchive::Release::Suite=stable', '-o', 'APT::FTPArchive::Release::Codename=stable', '-o', `APT::FTPArchive::Release::Architectures=${arch}`, '-o', 'APT::FTPArchive::Release::Components=main', 'release', 'dists/stable'],
    { cwd: repo },
  );
  writeFileSync(join(repo, 'dists/stable/Release'), release);
  return repo;
}

export interface Apt {
  /** Where apt keeps what it downloaded: cache/archives/NAME_1.0_all.deb. */
  dir: string;
  /** apt-get with these arguments, asynchronously (a proxy in this process must answer meanwhile). */
  run(args: string[]): Promise<void>;
}

/** apt in a state of its own under `dir`, its only source `mirrorUrl`/debian (trusted), through `proxyUrl`. */
export function aptThrough(dir: string, mirrorUrl: string, proxyUrl: string): Apt {
  // Every directory apt uses is private to the test; APT_CONFIG keeps the host's apt.conf.d out.
  const apt = join(dir, 'apt');
  for (const d of ['state/lists/partial', 'cache/archives/partial', 'etc/apt.conf.d', 'etc/preferences.d', 'etc/sources.list.d', 'etc/trusted.gpg.d']) mkdirSync(join(apt, d), { recursive: true });
  writeFileSync(join(apt, 'state/status'), '');
  writeFileSync(join(apt, 'etc/sources.list'), `deb [trusted=yes] ${mirrorUrl}/debian stable main\n`);
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
      `Acquire::http::Proxy "${proxyUrl}/";`,
      'Acquire::Languages "none";',
      'APT::Sandbox::User "root";',
      'Debug::NoLocking "true";',
      '',
    ].join('\n'),
  );
  const env = { ...process.env, APT_CONFIG: join(apt, 'apt.conf'), DEBIAN_FRONTEND: 'noninteractive' };
  const run = promisify(execFile);
  return {
    dir: apt,
    run: async (args) => {
      await run('apt-get', args, { env, timeout: 120_000 });
    },
  };
}
