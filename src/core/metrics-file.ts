// --metrics-file of the cron commands (hash, cache clean): the figures of
// the last run in Prometheus's text format, for node_exporter's textfile
// collector. The exposition is prom-client's (a Registry of gauges), written
// to a temporary file beside the target and renamed over it, so the
// collector, which reads *.prom files only, never sees half a file.
import { chmod, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Gauge, Registry } from 'prom-client';
import { PkgError, errnoText } from './errors.js';
import { PREFIX } from './metrics-http.js';
import { tempPathFor } from './atomic.js';

/** One sample of the run: `name` follows `pkgtorrent_<job>_`. */
export interface RunFigure {
  name: string;
  help: string;
  value: number;
  labels?: Record<string, string>;
}

export interface RunMetrics {
  /** "hash" or "cache_clean": the metrics are pkgtorrent_<job>_*. */
  job: string;
  startedMs: number;
  endedMs: number;
  /** The run did all it was asked without an error. */
  ok: boolean;
  /** What the run did; left out when it failed before knowing. */
  figures: RunFigure[];
}

/**
 * The file to write: `path`, or, when it is a directory (one that exists,
 * or a path ending in /), pkgtorrent-<command>.prom in it, so one setting
 * in the config file serves hash and cache clean without one overwriting
 * the other's file.
 */
export async function metricsFilePath(cwd: string, setting: string, command: string): Promise<string> {
  const path = resolve(cwd, setting);
  const isDir = setting.endsWith('/') || (await stat(path).then((s) => s.isDirectory(), () => false));
  return isDir ? join(path, `pkgtorrent-${command}.prom`) : path;
}

/** The exposition of a run (prom-client's text format, no timestamps: the collector refuses them). */
export async function runExposition(run: RunMetrics, lastSuccessS: number | null): Promise<string> {
  const registry = new Registry();
  const base = `${PREFIX}${run.job}_`;
  const gauge = (name: string, help: string, labelNames: string[] = []) => new Gauge({ name: base + name, help, labelNames, registers: [registry] });
  const byName = new Map<string, Gauge>();
  for (const f of run.figures) {
    let g = byName.get(f.name);
    if (!g) byName.set(f.name, (g = gauge(f.name, f.help, Object.keys(f.labels ?? {}))));
    g.set(f.labels ?? {}, f.value);
  }
  gauge('last_run_success', 'whether the last run ended without an error (1) or not (0)').set(run.ok ? 1 : 0);
  gauge('last_run_duration_seconds', 'how long the last run took').set((run.endedMs - run.startedMs) / 1000);
  gauge('last_run_timestamp_seconds', 'when the last run ended (Unix time)').set(run.endedMs / 1000);
  if (lastSuccessS !== null) gauge('last_success_timestamp_seconds', 'when the last run without an error ended (Unix time)').set(lastSuccessS);
  // The text format ends each line with a newline; prom-client leaves the last one out.
  const text = await registry.metrics();
  return text.endsWith('\n') ? text : text + '\n';
}

/** The last-success time an earlier run left in `file`, or null. */
async function previousSuccess(file: string, job: string): Promise<number | null> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const m = new RegExp(`^${PREFIX}${job}_last_success_timestamp_seconds (\\S+)$`, 'm').exec(text);
  const v = m ? Number(m[1]) : NaN;
  return Number.isFinite(v) ? v : null;
}

/**
 * Writes the run's metrics to `file` atomically. A failed run keeps the
 * last-success time of the file it replaces (none if that had none).
 */
export async function writeRunMetrics(file: string, run: RunMetrics): Promise<void> {
  const lastSuccess = run.ok ? run.endedMs / 1000 : await previousSuccess(file, run.job);
  const text = await runExposition(run, lastSuccess);
  const tmp = tempPathFor(file);
  try {
    await writeFile(tmp, text, { flag: 'wx' });
    // node_exporter runs as a user of its own: readable whatever the umask.
    await chmod(tmp, 0o644);
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw new PkgError('io', `cannot write metrics file ${file}: ${errnoText(err)}`);
  }
}

/**
 * Runs `body` (a cron command's run), then writes its metrics to the file
 * the setting `path` names (if set), also when the run failed: `report`
 * turns its result into samples and says whether it succeeded. A file that
 * cannot be written goes to `failed` (one line), never hiding the run's
 * own result or error.
 */
export async function withRunMetrics<T>(
  o: { cwd: string; path: string | undefined; command: string; job: string; failed: (line: string) => void },
  body: () => Promise<T>,
  report: (result: T) => { ok: boolean; figures: RunFigure[] },
): Promise<T> {
  const startedMs = Date.now();
  const write = async (run: Omit<RunMetrics, 'job' | 'startedMs' | 'endedMs'>) => {
    if (!o.path) return;
    const endedMs = Date.now();
    try {
      await writeRunMetrics(await metricsFilePath(o.cwd, o.path, o.command), { job: o.job, startedMs, endedMs, ...run });
    } catch (err) {
      o.failed((err as Error).message);
    }
  };
  let result: T;
  try {
    result = await body();
  } catch (err) {
    await write({ ok: false, figures: [] });
    throw err;
  }
  await write(report(result));
  return result;
}
