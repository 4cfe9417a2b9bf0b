// `pkgtorrent trackers check`: is the trackers file right, and are the
// trackers in it alive? Run it after editing the file, or from monitoring.
import { Command, Option } from '@commander-js/extra-typings';
import { readFile } from 'node:fs/promises';
import type { AnyCommand, Context } from '../cli/context.js';
import { formatTable, plural } from '../cli/text.js';
import { PkgError, fsError } from '../core/errors.js';
import { parseDuration } from '../core/size.js';
import { reviewTrackerLines } from '../core/trackers.js';
import { probeTrackers, type ProbeStatus } from '../core/tracker-probe.js';

const USAGE = `
Reads the trackers file (--trackers, PKGTORRENT_TRACKERS or the config file),
reports every line that is not a valid announce URL and every duplicate, then
probes each tracker in parallel: HTTP and HTTPS trackers with an announce
(event=stopped, so the check joins no swarm), UDP trackers with a BEP 15
connect. A tracker that answers with a failure reason (for example an unknown
torrent on a whitelisting tracker) is reachable. Exits 1 when a line is
invalid or no tracker answers; --offline checks the syntax only.

Examples:
  pkgtorrent trackers check --trackers /var/lib/torrent_service/trackers
  pkgtorrent trackers check --offline
  pkgtorrent trackers check --timeout 2s --json`;

export type LineStatus = ProbeStatus | 'invalid' | 'duplicate' | 'valid';

export interface LineResult {
  line: number;
  text: string;
  status: LineStatus;
  answered: boolean;
  latencyMs: number | null;
  detail: string;
  warning: string | null;
}

export interface CheckReport {
  file: string;
  offline: boolean;
  lines: LineResult[];
  trackers: number;
  answered: number;
  invalid: number;
  duplicates: number;
  ok: boolean;
}

export function register(program: Command, ctx: Context): AnyCommand {
  const trackers = program.command('trackers').description('check the trackers file');
  trackers
    .command('check')
    .description('validate the trackers file and probe every tracker')
    .option('--offline', 'check the syntax only, contact no tracker')
    .addOption(new Option('--timeout <duration>', 'how long to wait for each tracker (ms, s, m)').default('5s'))
    .option('--json', 'print the report as JSON')
    .addHelpText('after', USAGE)
    .action(async (opts, cmd) => {
      const timeoutMs = parseTimeout(opts.timeout);
      const file = (await ctx.resolve(cmd)).values.trackers;
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (e) {
        const err = fsError(e, file);
        throw new PkgError(err.kind, `trackers file ${err.message}`);
      }
      const report = await checkTrackers(file, text, { offline: !!opts.offline, timeoutMs });
      if (opts.json) ctx.out(JSON.stringify(report));
      else for (const line of reportLines(report)) ctx.out(line);
      if (!report.ok) ctx.exitCode = 1;
    });
  return trackers;
}

function parseTimeout(text: string): number {
  const value = parseDuration(text, '--timeout');
  if (value <= 0) throw new PkgError('usage', `invalid --timeout '${text}': must be more than 0`);
  return value;
}

export async function checkTrackers(file: string, text: string, o: { offline: boolean; timeoutMs: number }): Promise<CheckReport> {
  const reviewed = reviewTrackerLines(text);
  const toProbe = reviewed.filter((r) => !r.problem && r.duplicateOf === null);
  const probed = o.offline ? [] : await probeTrackers(toProbe.map((r) => r.text), o.timeoutMs);
  const byLine = new Map(toProbe.map((r, i) => [r.line, probed[i]]));
  const lines = reviewed.map((r): LineResult => {
    const base = { line: r.line, text: r.text, warning: r.warning, answered: false, latencyMs: null };
    if (r.problem) return { ...base, status: 'invalid', detail: r.problem };
    if (r.duplicateOf !== null) return { ...base, status: 'duplicate', detail: `same tracker as line ${r.duplicateOf}` };
    const p = byLine.get(r.line);
    if (!p) return { ...base, status: 'valid', detail: 'not probed (--offline)' };
    return { ...base, status: p.status, answered: p.answered, latencyMs: p.latencyMs, detail: p.detail };
  });
  const invalid = lines.filter((l) => l.status === 'invalid').length;
  const answered = lines.filter((l) => l.answered).length;
  return {
    file,
    offline: o.offline,
    lines,
    trackers: toProbe.length,
    answered,
    invalid,
    duplicates: lines.filter((l) => l.status === 'duplicate').length,
    ok: invalid === 0 && (o.offline || answered > 0),
  };
}

export function reportLines(r: CheckReport): string[] {
  if (r.lines.length === 0) return [`${r.file}: no trackers${r.offline ? '' : ', so none answers'}`];
  const rows = [
    ['LINE', 'TRACKER', 'STATUS', 'LATENCY', 'DETAIL'],
    ...r.lines.map((l) => [
      String(l.line),
      l.text,
      l.status,
      l.latencyMs === null ? '-' : `${l.latencyMs} ms`,
      l.warning ? `${l.detail}; warning: ${l.warning}` : l.detail,
    ]),
  ];
  const parts = [
    r.offline ? `${plural(r.trackers, 'tracker')} not probed (--offline)` : `${r.answered} of ${plural(r.trackers, 'tracker')} answered`,
    plural(r.invalid, 'invalid line'),
    plural(r.duplicates, 'duplicate'),
  ];
  return [...formatTable(rows), `${r.file}: ${parts.join(', ')}`];
}
