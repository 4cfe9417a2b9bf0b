// Feeding a whitelisting tracker. Debian's opentracker is built to accept
// only the info hashes listed in its `access.whitelist` file, re-read on
// SIGHUP. serve adds every info hash it hands out to that file before the
// torrent leaves, so the client's first announce is already accepted.
//
// The file is appended to, one 40-hex-digit line per hash, with O_APPEND
// (a line is one write, so several serve processes can share the file) and
// never rewritten: serve needs write access to the file, not to its
// directory (/etc/opentracker is root's). Hashes already in the file when
// serve starts are not added again.
import { appendFile, readFile } from 'node:fs/promises';
import { PkgError, errnoText } from '../core/errors.js';

/** How long opentracker is given to re-read its whitelist after the signal (it reloads in a thread of its own). */
const RELOAD_MS = 50;

export interface WhitelistOptions {
  file: string;
  /** The tracker's pid file; without one, reloading is left to the operator (a systemd path unit). */
  pidFile?: string;
  log: (line: string) => void;
  /** Process signalling, injected for tests. */
  kill?: (pid: number, signal: NodeJS.Signals) => void;
}

export class TrackerWhitelist {
  private known = new Set<string>();
  /** Hashes being added now, so concurrent requests for one wait for one append. */
  private adding = new Map<string, Promise<void>>();
  private warned = false;

  private constructor(private readonly o: WhitelistOptions) {}

  static async open(o: WhitelistOptions): Promise<TrackerWhitelist> {
    const w = new TrackerWhitelist(o);
    try {
      for (const line of (await readFile(o.file, 'latin1')).split('\n')) {
        const h = line.trim().toLowerCase();
        if (/^[0-9a-f]{40}$/.test(h)) w.known.add(h);
      }
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code !== 'ENOENT') throw new PkgError('io', `cannot read the tracker whitelist ${o.file}: ${errnoText(e)}`);
    }
    return w;
  }

  /** Nothing to wait for when the hash is listed already; else the promise of its listing (never rejects). */
  add(infoHashHex: string): Promise<void> | undefined {
    if (this.known.has(infoHashHex)) return undefined;
    let p = this.adding.get(infoHashHex);
    if (!p) {
      p = this.append(infoHashHex).finally(() => this.adding.delete(infoHashHex));
      this.adding.set(infoHashHex, p);
    }
    return p;
  }

  private async append(ih: string): Promise<void> {
    try {
      await appendFile(this.o.file, `${ih}\n`, { flag: 'a', mode: 0o644 });
      this.known.add(ih);
    } catch (err) {
      // The torrent still works through its web seed: say so once, go on.
      if (!this.warned) this.o.log(`cannot add to the tracker whitelist ${this.o.file}: ${errnoText(err)} (torrents go out, but the tracker refuses them)`);
      this.warned = true;
      return;
    }
    await this.reload();
  }

  private async reload(): Promise<void> {
    if (!this.o.pidFile) return;
    try {
      const pid = Number((await readFile(this.o.pidFile, 'utf8')).trim());
      if (!Number.isSafeInteger(pid) || pid <= 1) throw new Error(`no process id in ${this.o.pidFile}`);
      (this.o.kill ?? process.kill)(pid, 'SIGHUP');
    } catch (err) {
      this.o.log(`cannot signal the tracker to reload its whitelist: ${(err as Error).message}`);
      return;
    }
    await new Promise((r) => setTimeout(r, RELOAD_MS));
  }
}
