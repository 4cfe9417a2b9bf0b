// Real tools nobody here wrote, used as oracles. Locally a missing tool skips
// the test with the package to install; with CI set it fails the test.
import { spawnSync, execFileSync } from 'node:child_process';
import type { Test } from 'tap';
import { existsSync } from 'node:fs';

/** Debian's python, which has python3-libtorrent (not the first python3 on PATH). */
export const PY = '/usr/bin/python3';

const PACKAGES: Record<string, string> = {
  mktorrent: 'mktorrent',
  libtorrent: 'python3-libtorrent',
  aria2c: 'aria2',
  'transmission-cli': 'transmission-cli',
  opentracker: 'opentracker',
  groff: 'groff',
  stunnel4: 'stunnel4',
  openssl: 'openssl',
  inotifywait: 'inotify-tools',
  'dpkg-deb': 'dpkg',
  'apt-ftparchive': 'apt-utils',
  'dpkg-scanpackages': 'dpkg-dev',
  'apt-get': 'apt',
  rpmbuild: 'rpm',
  createrepo_c: 'createrepo-c',
  dnf: 'dnf',
  promtool: 'prometheus',
  prometheus: 'prometheus',
  chromium: 'chromium',
};

function available(tool: string): boolean {
  if (tool === 'libtorrent') {
    return existsSync(PY) && spawnSync(PY, ['-c', 'import libtorrent'], { stdio: 'ignore' }).status === 0;
  }
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

const cache = new Map<string, boolean>();

/**
 * True when the tool is here. Otherwise fails (CI) or skips (locally) the
 * test `t` loudly and returns false; the caller returns at once.
 */
export function need(t: Test, tool: keyof typeof PACKAGES): boolean {
  if (!cache.has(tool)) cache.set(tool, available(tool));
  if (cache.get(tool)) return true;
  const msg = `${tool} is not installed: apt-get install -y ${PACKAGES[tool] ?? tool}`;
  if (process.env.CI) t.fail(`${msg} (required when CI is set)`);
  else {
    process.stderr.write(`# SKIP ${msg}\n`);
    t.pass(msg, { skip: msg });
  }
  return false;
}

/**
 * The BitTorrent engine of `pkgtorrent proxy` and `serve --seed` can run:
 * bin/pkgtorrent-bt is a Python program (#!/usr/bin/python3, the same PY)
 * over python3-libtorrent. Same contract as need().
 */
export function needBtEngine(t: Test): boolean {
  return need(t, 'libtorrent');
}

/** Runs python code with libtorrent; the script prints JSON, which is returned. */
export function libtorrent<T = unknown>(script: string, args: string[] = [], timeoutMs = 60_000): T {
  const out = execFileSync(PY, ['-c', script, ...args], { encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  return JSON.parse(out) as T;
}

export interface LtTorrentInfo {
  name: string;
  infoHash: string;
  pieceLength: number;
  numPieces: number;
  totalSize: number;
  files: Array<{ path: string; size: number; pad: boolean }>;
  webSeeds: string[];
  trackers: Array<{ url: string; tier: number }>;
}

/** How libtorrent sees a .torrent file. */
export function ltInfo(torrentPath: string): LtTorrentInfo {
  return libtorrent<LtTorrentInfo>(
    `
import json, sys, libtorrent as lt
ti = lt.torrent_info(sys.argv[1])
fs = ti.files()
files = []
for i in range(fs.num_files()):
    files.append({"path": fs.file_path(i), "size": fs.file_size(i), "pad": bool(fs.file_flags(i) & lt.file_storage.flag_pad_file)})
print(json.dumps({
  "name": ti.name(), "infoHash": str(ti.info_hash()), "pieceLength": ti.piece_length(),
  "numPieces": ti.num_pieces(), "totalSize": ti.total_size(), "files": files,
  "webSeeds": [w["url"] for w in ti.web_seeds()],
  "trackers": [{"url": t.url, "tier": t.tier} for t in ti.trackers()],
}))
`,
    [torrentPath],
  );
}

/** The v1 info hash mktorrent gives for the same input and piece length (2^exp). */
export function mktorrentHash(path: string, pieceLengthExp: number, out: string, extra: string[] = []): string {
  execFileSync('mktorrent', ['-l', String(pieceLengthExp), '-o', out, ...extra, path], { stdio: 'ignore', timeout: 120_000 });
  return libtorrent<{ h: string }>(`import json,sys,libtorrent as lt; print(json.dumps({"h": str(lt.torrent_info(sys.argv[1]).info_hash())}))`, [out]).h;
}
