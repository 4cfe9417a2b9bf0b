/**
 * A Map that keeps at most `max` entries, or, given `weigh`, entries whose
 * weights add up to at most `max` (bytes, say): `set` makes its key the
 * newest and drops the oldest beyond the bound, though never the newest
 * itself. Reading does not reorder; a caller that wants least-recently-used
 * order sets an entry again when it uses it.
 */
export class BoundedMap<K, V> extends Map<K, V> {
  private total = 0;
  /** Each entry's weight as it was set (a value may change after). */
  private weights = new Map<K, number>();

  constructor(
    readonly max: number,
    private readonly weigh: (value: V) => number = () => 1,
  ) {
    super();
  }

  /** The entries' weights added up (their count without `weigh`). */
  get weight(): number {
    return this.total;
  }

  override set(key: K, value: V): this {
    this.delete(key);
    super.set(key, value);
    const w = this.weigh(value);
    this.weights.set(key, w);
    this.total += w;
    while (this.total > this.max && this.size > 1) this.delete(this.keys().next().value!);
    return this;
  }

  override delete(key: K): boolean {
    if (!super.has(key)) return false;
    this.total -= this.weights.get(key) ?? 0;
    this.weights.delete(key);
    return super.delete(key);
  }

  override clear(): void {
    this.total = 0;
    this.weights.clear();
    super.clear();
  }
}
