// Request text as it may go into a log line: anything unprintable escaped and
// the length capped, so a hostile URL cannot forge or break log lines.
export function printable(s: string): string {
  if (/^[\x21-\x7e]{0,2048}$/.test(s)) return s;
  return s.replace(/[^\x21-\x7e]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`).slice(0, 2048);
}
