// Line-by-line review of a trackers file for `trackers check`: stricter than
// the service's reader (trackers.ts), which only needs to skip bad lines,
// because here an operator wants to hear about everything that looks wrong.
import { announceUrlProblem } from './trackers.js';

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

/** Why a URL cannot be announced to, beyond what the service already rejects. */
function extraProblem(u: URL): string | null {
  if (u.port === '0') return 'port 0';
  if (u.hash) return `fragment '${u.hash}' is never sent to a tracker`;
  return null;
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
      report.problem = extraProblem(u);
      if (!report.problem) {
        report.warning = warningFor(u);
        const first = seen.get(u.href);
        if (first !== undefined) report.duplicateOf = first;
        else seen.set(u.href, report.line);
      }
    }
    out.push(report);
  });
  return out;
}
