// One run of a piece of work per key at a time: a caller asking for a key
// whose work is under way shares its promise instead of starting another.
// Used wherever concurrent requests must not repeat work (hashing a file,
// building a torrent, checking a cached entry's files).
export class SharedRuns<K, V> {
  private running = new Map<K, Promise<V>>();

  /** Runs in progress. */
  get size(): number {
    return this.running.size;
  }

  has(key: K): boolean {
    return this.running.has(key);
  }

  /** The promise of `key`'s run, starting it with `start` when none is under way; forgotten once it settles. */
  run(key: K, start: () => Promise<V>): Promise<V> {
    let p = this.running.get(key);
    if (!p) {
      p = start().finally(() => this.running.delete(key));
      this.running.set(key, p);
    }
    return p;
  }
}
