// A complete mirror for proxy tests: files under a temporary root served by
// a real `pkgtorrent serve --files` (static files and the torrent service in
// one process), or by a plain static server with no service at all.
import { createReadStream, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { Test } from 'tap';
import { scratch } from './clients.js';
import { startServe, type ServeProcess } from './server.js';

/** Files and directories: a Buffer or string is a file, an object a directory. */
export interface Tree {
  [name: string]: Buffer | string | Tree;
}

export function writeTree(dir: string, tree: Tree): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, v] of Object.entries(tree)) {
    if (typeof v === 'string' || Buffer.isBuffer(v)) writeFileSync(join(dir, name), v);
    else writeTree(join(dir, name), v);
  }
}

export interface Mirror {
  url: string;
  root: string;
  serve: ServeProcess;
}

/** The files of `tree` under a fresh root (not t.testdir: a test may want its own); piece length 16K unless given. */
export async function startMirror(t: Test, tree: Tree, pieceLength = '16K'): Promise<Mirror> {
  const dir = scratch(t, 'mirror');
  writeTree(join(dir, 'root'), tree);
  mkdirSync(join(dir, 'cache'));
  const serve = await startServe(t, { root: join(dir, 'root'), cacheDir: join(dir, 'cache'), files: true, pieceLength });
  return { url: serve.url, root: join(dir, 'root'), serve };
}

/** A static file server with no torrent service (every service path is a 404). */
export async function startPlainMirror(t: Test, root: string): Promise<{ url: string; requests: string[] }> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    const path = join(root, decodeURIComponent(req.url!.split('?')[0]!));
    let size: number;
    try {
      size = statSync(path).size;
    } catch {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'Content-Length': size });
    if (req.method === 'HEAD') res.end();
    else createReadStream(path).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, requests };
}
