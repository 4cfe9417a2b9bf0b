// A --metrics-file as node_exporter's textfile collector reads it: its
// samples by name (and labels), and `promtool check metrics` on it.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Test } from 'tap';
import { need } from './oracles.js';

/** "name{labels}" -> value, for every sample line of the file. */
export function textfileSamples(file: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

/** The file passes `promtool check metrics` (format and naming lint), ends in a newline, and no temporary file is left beside it. */
export function checkTextfile(t: Test, file: string): void {
  const text = readFileSync(file, 'utf8');
  t.ok(text.endsWith('\n'), 'the last line ends in a newline');
  t.same(readdirSync(dirname(file)).filter((n) => n.includes('pkgtorrent-tmp')), [], 'no temporary file left');
  if (!need(t, 'promtool')) return;
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  t.equal(r.status, 0, `promtool check metrics accepts ${file}${r.status ? `:\n${r.stdout}${r.stderr}` : ''}`);
}
