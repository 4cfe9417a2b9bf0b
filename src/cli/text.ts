// Small helpers for what commands print: counted nouns and aligned tables.

/** "1 entry", "3 entries". */
export function plural(n: number, one: string, many = one + 's'): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * Rows as lines of columns two spaces apart, every column as wide as its
 * widest cell; the last column is not padded.
 */
export function formatTable(rows: ReadonlyArray<readonly string[]>): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  );
}
