// What the real binary does when stdout fails or the user interrupts it:
// one line and the right exit code, never a stack trace; a closed pipe is the
// reader's choice and is not reported; SIGINT exits 130.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, nodeCommand } from './helpers/cli.js';
import { PY } from './helpers/oracles.js';
import { until } from './helpers/poll.js';

const dir = t.testdir({ f: 'some bytes', root: { pub: { 'x.iso': 'x'.repeat(1000) } }, cache: {} });
const env = { ...process.env, PKGTORRENT_CONFIG: '', PKGTORRENT_CACHE_DIR: join(dir, 'cache'), PKGTORRENT_ROOT: join(dir, 'root') };

/** Runs the binary with stdout on /dev/full. */
function toFull(args: string[]) {
  const [cmd, argv] = nodeCommand(BIN, args);
  const out = spawnSync('sh', ['-c', '"$@" >/dev/full', 'sh', cmd, ...argv], { cwd: dir, env, encoding: 'utf8', timeout: 60_000 });
  return { code: out.status, stderr: out.stderr };
}

/** Runs the binary with stdout on a pipe whose reader is already gone: every write gets EPIPE. */
function toClosedPipe(args: string[]) {
  const [cmd, argv] = nodeCommand(BIN, args);
  const script = 'import os,subprocess,sys\nr,w=os.pipe()\nos.close(r)\np=subprocess.run(sys.argv[1:],stdout=w,stderr=subprocess.PIPE)\nsys.stdout.write("%d\\n%s" % (p.returncode, p.stderr.decode()))';
  const out = spawnSync(PY, ['-c', script, cmd, ...argv], { cwd: dir, env, encoding: 'utf8', timeout: 60_000 });
  const [code, ...rest] = out.stdout.split('\n');
  return { code: Number(code), stderr: rest.join('\n') };
}

for (const args of [['make', '-o', '-', 'f'], ['hash'], ['config'], ['--help'], ['make', '--help']]) {
  t.test(`${args.join(' ')} >/dev/full: one line, exit 1`, async (t) => {
    const r = toFull(args);
    t.equal(r.code, 1);
    t.equal(r.stderr, 'pkgtorrent: cannot write to stdout: no space left on device\n');
  });
  t.test(`${args.join(' ')} into a closed pipe: quiet, exit 141 as for SIGPIPE`, async (t) => {
    const r = toClosedPipe(args);
    t.equal(r.code, 141);
    t.equal(r.stderr, '');
  });
}

t.test('make -o - | head -c1: head gets its byte, make stops quietly with 141', async (t) => {
  // 128 MiB in 16K pieces is a 160 KiB torrent: more than a pipe holds, so
  // the write is still under way when head leaves.
  const big = join(dir, 'sparse.bin');
  writeFileSync(big, '');
  truncateSync(big, 128 * 1024 ** 2);
  const [cmd, argv] = nodeCommand(BIN, ['make', '-l', '16K', '-o', '-', big]);
  const quoted = [cmd, ...argv].map((a) => `'${a}'`).join(' ');
  const out = spawnSync('bash', ['-c', `${quoted} | head -c1; echo " \${PIPESTATUS[0]}"`], { cwd: dir, env, encoding: 'utf8', timeout: 60_000 });
  t.equal(out.stdout, 'd 141\n', 'the first byte of the torrent, then the exit status');
  t.equal(out.stderr, '');
});

t.test('SIGINT while hashing: "interrupted", exit 130, nothing cached', async (t) => {
  const big = join(dir, 'root/pub/big.iso');
  writeFileSync(big, '');
  truncateSync(big, 64 * 1024 ** 3); // sparse: reads cost CPU only, and far longer than the test waits
  t.teardown(() => truncateSync(big, 0));
  const [cmd, argv] = nodeCommand(BIN, ['hash', '/pub/big.iso']);
  const child = spawn(cmd, argv, { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  t.teardown(() => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const reading = () => {
    try {
      return readdirSync(`/proc/${child.pid}/fd`).some((fd) => readlinkSync(`/proc/${child.pid}/fd/${fd}`) === big);
    } catch {
      return false;
    }
  };
  t.ok(await until(30_000, reading), 'the file is being hashed');
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  child.kill('SIGINT');
  t.equal(await exited, 130);
  t.equal(stderr, 'pkgtorrent: interrupted\n');
  t.notOk(existsSync(join(dir, 'cache/pieces/pub/big.iso')), 'no piece cache entry');
});
