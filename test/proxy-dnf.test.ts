// dnf end to end through the proxy: a small rpm repository (rpmbuild,
// createrepo_c) served by `pkgtorrent serve --files`; `dnf install
// --downloadonly` into a private installroot with a private config whose
// proxy= is the proxy. The large rpm goes through BitTorrent (the engine, its
// pieces from the mirror: no tracker here), the small one and the repodata
// go direct, and the bytes dnf keeps are the repository's.
import t from 'tap';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scratch } from './helpers/clients.js';
import { need, needBtEngine } from './helpers/oracles.js';
import { startServe } from './helpers/server.js';
import { startTestProxy } from './helpers/proxy.js';

/** A noarch rpm holding one data file; everything rpmbuild writes stays under work (HOME included). */
function makeRpm(work: string, name: string, payload: Buffer, outDir: string): string {
  const top = join(work, name);
  for (const sub of ['SOURCES', 'tmp']) mkdirSync(join(top, sub), { recursive: true });
  writeFileSync(join(top, 'SOURCES/blob'), payload);
  const spec = join(top, `${name}.spec`);
  writeFileSync(
    spec,
    [
      `Name: ${name}`,
      'Version: 1.0',
      'Release: 1',
      `Summary: ${name} test package`,
      'License: MIT',
      'BuildArch: noarch',
      '%description',
      `${name} test package`,
      '%install',
      `mkdir -p %{buildroot}/usr/share/${name}`,
      `cp %{_sourcedir}/blob %{buildroot}/usr/share/${name}/blob`,
      '%files',
      `/usr/share/${name}/blob`,
      '',
    ].join('\n'),
  );
  // w0.ufdio: an uncompressed payload; random bytes would not shrink and the rpm's size stays predictable.
  execFileSync(
    'rpmbuild',
    ['-bb', '--define', `_topdir ${top}`, '--define', `_tmppath ${top}/tmp`, '--define', `_rpmdir ${outDir}`, '--define', '_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm', '--define', '_binary_payload w0.ufdio', spec],
    { stdio: 'ignore', env: { ...process.env, HOME: work }, timeout: 60_000 },
  );
  return `${name}-1.0-1.noarch.rpm`;
}

t.test('dnf install --downloadonly through the proxy', async (t) => {
  if (!needBtEngine(t) || !need(t, 'rpmbuild') || !need(t, 'createrepo_c') || !need(t, 'dnf')) return;
  const dir = scratch(t, 'dnf');
  const repo = join(dir, 'root/pub/repo');
  mkdirSync(join(repo, 'Packages'), { recursive: true });
  const big = makeRpm(join(dir, 'build'), 'bigpkg', randomBytes(3 * 1024 * 1024), join(repo, 'Packages'));
  const small = makeRpm(join(dir, 'build'), 'smallpkg', randomBytes(10_000), join(repo, 'Packages'));
  execFileSync('createrepo_c', ['--quiet', repo], { stdio: 'ignore', timeout: 60_000 });

  mkdirSync(join(dir, 'cache'));
  const mirror = await startServe(t, { root: join(dir, 'root'), cacheDir: join(dir, 'cache'), files: true });
  const proxy = await startTestProxy(t, { minSize: 1024 * 1024 });

  // dnf's state is private: its own config (with the repository in it and an
  // empty reposdir, so no host .repo file is read), an empty installroot for
  // the rpmdb, cache, logs and persistent state, and the download dir.
  const d = join(dir, 'dnf');
  for (const sub of ['root', 'repos.d', 'out']) mkdirSync(join(d, sub), { recursive: true });
  writeFileSync(
    join(d, 'dnf.conf'),
    [
      '[main]',
      `reposdir=${join(d, 'repos.d')}`,
      'cachedir=/var/cache/dnf',
      'persistdir=/var/lib/dnf',
      'logdir=/var/log',
      'gpgcheck=0',
      'install_weak_deps=0',
      'pluginpath=',
      'plugins=0',
      `proxy=${proxy.url}`,
      '',
      '[test]',
      'name=test',
      `baseurl=${mirror.url}/pub/repo/`,
      'enabled=1',
      'gpgcheck=0',
      'metadata_expire=0',
      '',
    ].join('\n'),
  );
  const out = join(d, 'out');
  // Asynchronously: the proxy runs in this process and must answer meanwhile.
  const run = promisify(execFile);
  const r = await run(
    'dnf',
    ['-c', join(d, 'dnf.conf'), '--installroot', join(d, 'root'), '--releasever', '1', '--disablerepo=*', '--enablerepo=test', '-y', 'install', '--downloadonly', '--downloaddir', out, 'bigpkg', 'smallpkg'],
    { env: { ...process.env, HOME: d, LC_ALL: 'C.UTF-8' }, timeout: 180_000 },
  );
  t.comment(r.stdout);

  t.same(readdirSync(out).sort(), [big, small], 'dnf downloaded both rpms');
  for (const name of [big, small]) {
    t.ok(readFileSync(join(out, name)).equals(readFileSync(join(repo, 'Packages', name))), `${name}: dnf's copy is the repository's`);
  }
  const esc = (s: string) => s.replace(/[.+]/g, '\\$&');
  const bigSize = statSync(join(repo, 'Packages', big)).size;
  const line = await proxy.line(new RegExp(`${esc(big)} 200 bittorrent`));
  t.match(line, new RegExp(`bytes=${bigSize} \\d+ms peers=0 mirror=${bigSize} store=0 `), 'the large rpm went through the engine, its pieces from the mirror (no tracker)');
  t.notMatch(line, /range=|fallback=/, 'no Range fallback');
  await proxy.line(new RegExp(`${esc(small)} 200 direct\\(small\\)`));
  await proxy.line(/\/pub\/repo\/repodata\/repomd\.xml 200 direct /);
  await proxy.line(/\/pub\/repo\/repodata\/[0-9a-f]+-primary\.xml\.\w+ 200 direct/);
  t.notOk(proxy.log.some((l) => /repodata\/.* (bittorrent|store) /.test(l)), 'repodata never through BitTorrent');
  t.comment(proxy.log.join('\n'));
  await mirror.waitFor(new RegExp(`simple/pub/repo/Packages/${esc(big)} 200`));
});
