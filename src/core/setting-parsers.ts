// Parsers of setting values, as the table in config.ts uses them: each takes
// the text of a flag, variable or config line and returns the value or
// throws a usage error naming what it expected.
import { PkgError } from './errors.js';

export function parseBool(text: string): boolean {
  if (/^(1|true|yes|on)$/i.test(text)) return true;
  if (/^(0|false|no|off)$/i.test(text)) return false;
  throw new PkgError('usage', `expected yes or no, got '${text}'`);
}

export function parseInteger(min: number, max: number) {
  return (text: string): number => {
    if (!/^\d+$/.test(text.trim())) throw new PkgError('usage', `expected a whole number, got '${text}'`);
    const n = Number(text);
    if (n < min || n > max) throw new PkgError('usage', `expected a number from ${min} to ${max}, got '${text}'`);
    return n;
  };
}

export const str = (text: string): string => text;

/** "a:b" (a config file or variable) or the repeated flag's values joined so; empty parts are dropped. */
export function parsePathList(text: string): string[] {
  return text.split(':').filter((p) => p !== '');
}

export interface Mirror {
  name: string;
  url: string;
}

export function parseList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

export function parseMirror(text: string): Mirror {
  const m = /^([A-Za-z0-9._~-]+)=(https?:\/\/.+)$/.exec(text);
  if (!m) throw new PkgError('usage', `invalid mirror '${text}': expected NAME=http(s)://host/path`);
  try {
    new URL(m[2]!);
  } catch {
    throw new PkgError('usage', `invalid mirror '${text}': bad URL`);
  }
  return { name: m[1]!, url: m[2]!.replace(/\/+$/, '') };
}

export function parseRatio(text: string): number {
  if (!/^\d+(\.\d+)?$/.test(text.trim())) throw new PkgError('usage', `expected a ratio like 1.0, got '${text}'`);
  return Number(text);
}

/** The BitTorrent engine's ports (bt-port), aria2's syntax: "6881" or "6881-6999". */
export function parsePorts(spec: string): { first: number; last: number } {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(spec.trim());
  const first = Number(m?.[1]);
  const last = m?.[2] === undefined ? first : Number(m[2]);
  if (!m || first < 1 || last > 65535 || last < first) throw new PkgError('usage', `invalid --bt-port '${spec}': expected PORT or FIRST-LAST`);
  return { first, last };
}
