// Completed packages, by info hash: done/<info hash>/<name>, with the
// torrent beside it as <name>.torrent (one package per directory, so the
// two names never clash) for seeding again after a restart. A file gets
// there only after every piece was verified against its torrent, by an
// atomic rename of a directory holding a hard link to the engine's download, so
// a crash at any point leaves either nothing or a complete file. The engine
// downloads into partial/<info hash>/, which is emptied at every start.
// Least recently used entries go first when the store is over its size.
import { randomBytes } from 'node:crypto';
import { link, mkdir, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parsePackageTorrent, type PackageTorrent } from './lookup.js';

/** A stored package with the torrent it was verified against. */
export interface StoredTorrent {
  torrent: PackageTorrent;
  /** When it was stored (the torrent file's mtime, never touched after). */
  completedAt: number;
}

export class Store {
  private constructor(
    readonly dir: string,
    private readonly maxBytes: number,
    private readonly onEvict: (infoHash: string) => void,
  ) {}

  static async open(dir: string, maxBytes: number, onEvict: (infoHash: string) => void = () => undefined): Promise<Store> {
    await rm(join(dir, 'partial'), { recursive: true, force: true });
    await mkdir(join(dir, 'partial'), { recursive: true });
    await mkdir(join(dir, 'done'), { recursive: true });
    for (const name of await readdir(join(dir, 'done'))) {
      if (name.startsWith('.')) await rm(join(dir, 'done', name), { recursive: true, force: true });
    }
    return new Store(dir, maxBytes, onEvict);
  }

  partialDir(infoHash: string): string {
    return join(this.dir, 'partial', infoHash);
  }

  /** The stored file for this torrent, marked as just used; null when absent or not whole. */
  async lookup(infoHash: string, name: string, length: number): Promise<string | null> {
    const path = join(this.dir, 'done', infoHash, name);
    try {
      if ((await stat(path)).size !== length) return null;
      const now = new Date();
      await utimes(join(this.dir, 'done', infoHash), now, now);
      return path;
    } catch {
      return null;
    }
  }

  /** Whether a file of this size may be downloaded, after evicting what must go. */
  async makeRoom(length: number): Promise<boolean> {
    if (length > this.maxBytes) return false;
    await this.evict(this.maxBytes - length);
    return true;
  }

  /** Moves a verified download into the store with its torrent (the engine keeps seeding from its own link). */
  async commit(infoHash: string, name: string, torrent: Buffer): Promise<void> {
    const tmp = join(this.dir, 'done', `.tmp-${infoHash}-${randomBytes(4).toString('hex')}`);
    await mkdir(tmp);
    try {
      await link(join(this.partialDir(infoHash), name), join(tmp, name));
      await writeFile(join(tmp, `${name}.torrent`), torrent);
      await rm(join(this.dir, 'done', infoHash), { recursive: true, force: true });
      await rename(tmp, join(this.dir, 'done', infoHash));
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
    await this.evict(this.maxBytes);
  }

  /**
   * Every stored package whose torrent is whole and matches it: a single
   * file of that name and length whose info hash names the directory.
   * Anything else (no torrent, an older store, a damaged or foreign one)
   * is left out: it is still answered from, only not seeded.
   */
  async storedTorrents(): Promise<StoredTorrent[]> {
    const out: StoredTorrent[] = [];
    for (const ih of await readdir(join(this.dir, 'done'))) {
      if (!/^[0-9a-f]{40}$/.test(ih)) continue;
      const d = join(this.dir, 'done', ih);
      try {
        for (const f of await readdir(d)) {
          if (!f.endsWith('.torrent')) continue;
          const name = f.slice(0, -'.torrent'.length);
          const size = await stat(join(d, name)).then((s) => (s.isFile() ? s.size : -1), () => -1);
          if (size < 0) continue;
          const t = parsePackageTorrent(await readFile(join(d, f)), name, size);
          if (t?.infoHash === ih) out.push({ torrent: t, completedAt: (await stat(join(d, f))).mtimeMs });
        }
      } catch {
        // Removed meanwhile by an eviction.
      }
    }
    return out;
  }

  /** A link to a stored file where the engine seeds it from (partial/<info hash>/<name>). */
  async linkForSeeding(infoHash: string, name: string): Promise<string> {
    const dir = this.partialDir(infoHash);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    await link(join(this.dir, 'done', infoHash, name), join(dir, name));
    return dir;
  }

  /** Drops a stored package (found damaged). */
  async remove(infoHash: string): Promise<void> {
    await rm(join(this.dir, 'done', infoHash), { recursive: true, force: true });
    await this.discardPartial(infoHash);
  }

  async discardPartial(infoHash: string): Promise<void> {
    await rm(this.partialDir(infoHash), { recursive: true, force: true });
  }

  /** The stored packages, and their bytes as --store-size counts them (torrent files included). */
  async usage(): Promise<{ packages: number; bytes: number }> {
    const entries = await this.entries();
    return { packages: entries.length, bytes: entries.reduce((n, e) => n + e.bytes, 0) };
  }

  /** Every stored package: its directory's name, when it was last used, its bytes (the torrent's included). */
  private async entries(): Promise<Array<{ ih: string; used: number; bytes: number }>> {
    const entries: Array<{ ih: string; used: number; bytes: number }> = [];
    for (const ih of await readdir(join(this.dir, 'done'))) {
      if (ih.startsWith('.')) continue;
      const d = join(this.dir, 'done', ih);
      try {
        const used = (await stat(d)).mtimeMs;
        let bytes = 0;
        for (const f of await readdir(d)) bytes += (await stat(join(d, f))).size;
        entries.push({ ih, used, bytes });
      } catch {
        // Removed meanwhile by an eviction.
      }
    }
    return entries;
  }

  /** Removes least recently used entries until at most `budget` bytes are stored. */
  async evict(budget: number): Promise<void> {
    const entries = await this.entries();
    let total = entries.reduce((n, e) => n + e.bytes, 0);
    entries.sort((a, b) => a.used - b.used);
    for (const e of entries) {
      if (total <= budget) break;
      await rm(join(this.dir, 'done', e.ih), { recursive: true, force: true });
      await this.discardPartial(e.ih);
      this.onEvict(e.ih);
      total -= e.bytes;
    }
  }
}
