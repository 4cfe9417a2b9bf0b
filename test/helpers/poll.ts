/**
 * Polls until `check` returns true, every `everyMs`, at most `ms` milliseconds.
 * Returns false on timeout.
 */
export async function until(ms: number, check: () => boolean | Promise<boolean>, everyMs = 50): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return false;
}
