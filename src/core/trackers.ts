// The trackers file (pkgtorrent-service(8), TRACKERS FILE) and the per-torrent tier order (TORRENT LAYOUT).
// One reading of the file serves both the service (which skips bad lines)
// and `trackers check` (which reports them, and warns about odd ones).
import { readFile, stat } from 'node:fs/promises';
import { sha1 } from './metainfo.js';
import { announceUrlProblem } from './urls.js';

export interface TrackerLineReport {
  line: number;
  text: string;
  /** Why the line is not a usable announce URL; null when it is one. */
  problem: string | null;
  /** Something suspicious that does not make the line unusable. */
  warning: string | null;
  /** Line number of an earlier line naming the same tracker. */
  duplicateOf: number | null;
}

function warningFor(u: URL): string | null {
  if ((u.protocol === 'http:' || u.protocol === 'https:') && u.pathname === '/' && !u.search) {
    return 'no announce path (most trackers use /announce)';
  }
  return null;
}

/**
 * Reviews every non-blank, non-comment line. Duplicates are found on the
 * normalised URL, so `http://T:80/announce` repeats `http://t/announce`.
 */
export function reviewTrackerLines(text: string): TrackerLineReport[] {
  const out: TrackerLineReport[] = [];
  const seen = new Map<string, number>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const report: TrackerLineReport = { line: i + 1, text: line, problem: announceUrlProblem(line), warning: null, duplicateOf: null };
    if (!report.problem) {
      const u = new URL(line);
      report.warning = warningFor(u);
      const first = seen.get(u.href);
      if (first !== undefined) report.duplicateOf = first;
      else seen.set(u.href, report.line);
    }
    out.push(report);
  });
  return out;
}

/**
 * One tracker per tier, tiers ordered by sha1(url + infoHashHex): each torrent
 * prefers a different tracker, so a fleet spreads over all of them, while a
 * given torrent always gets the same order.
 */
export function trackerTiers(urls: readonly string[], infoHashHex: string): string[][] {
  return urls
    .map((url) => ({ url, key: sha1(url + infoHashHex) }))
    .sort((a, b) => Buffer.compare(a.key, b.key))
    .map((t) => [t.url]);
}

/**
 * The trackers file as the service sees it: read on first use, then re-read
 * when its mtime or size changes, looking at most once per `checkIntervalMs`.
 * A missing file means no trackers; problems are reported once per change.
 */
export class TrackerList {
  /** Times the file was read after a change (serve's metrics). */
  reloads = 0;
  /** Lines of the file as last read that are not tracker URLs (ignored, and warned of). */
  invalidLines = 0;
  private urls: string[] = [];
  private stampKey = '';
  private checkedAt = -Infinity;
  private checking: Promise<void> | null = null;

  constructor(
    readonly path: string | null,
    private readonly opts: { checkIntervalMs?: number; warn?: (msg: string) => void; now?: () => number } = {},
  ) {}

  /**
   * The list without waiting, when no re-check is due or under way (the
   * cached GET's synchronous path); null means: ask `current()`.
   */
  ready(): string[] | null {
    return this.checking || this.due((this.opts.now ?? Date.now)()) ? null : this.urls;
  }

  /** Whether the file is to be read again: one place, so the synchronous and the waiting path agree. */
  private due(now: number): boolean {
    return !!this.path && now - this.checkedAt >= (this.opts.checkIntervalMs ?? 60_000);
  }

  async current(): Promise<string[]> {
    const now = (this.opts.now ?? Date.now)();
    if (this.due(now)) {
      this.checkedAt = now;
      this.checking ??= this.reload().finally(() => (this.checking = null));
    }
    if (this.checking) await this.checking;
    return this.urls;
  }

  private async reload(): Promise<void> {
    const path = this.path!;
    let key: string;
    try {
      const st = await stat(path);
      key = `${st.size}:${st.mtimeMs}:${st.ino}`;
    } catch {
      key = 'missing';
    }
    if (key === this.stampKey) return;
    this.stampKey = key;
    this.reloads++;
    this.invalidLines = 0;
    if (key === 'missing') {
      this.urls = [];
      this.opts.warn?.(`trackers file ${path} not found: torrents will have no trackers`);
      return;
    }
    try {
      const reports = reviewTrackerLines(await readFile(path, 'utf8'));
      for (const bad of reports) if (bad.problem) this.opts.warn?.(`${path}:${bad.line}: ignoring '${bad.text}': ${bad.problem}`);
      this.invalidLines = reports.filter((r) => r.problem).length;
      this.urls = reports.filter((r) => !r.problem && r.duplicateOf === null).map((r) => r.text);
    } catch (e) {
      this.opts.warn?.(`trackers file ${path}: ${(e as Error).message}`);
      this.urls = [];
    }
  }
}
