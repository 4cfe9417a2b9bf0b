/**
 * A Map that keeps at most `max` entries: `set` makes its key the newest and
 * drops the oldest beyond the bound. Reading does not reorder; a caller that
 * wants least-recently-used order sets an entry again when it uses it.
 */
export class BoundedMap<K, V> extends Map<K, V> {
  constructor(readonly max: number) {
    super();
  }

  override set(key: K, value: V): this {
    super.delete(key);
    super.set(key, value);
    while (this.size > this.max) this.delete(this.keys().next().value!);
    return this;
  }
}
