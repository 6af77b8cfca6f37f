/**
 * A bounded map with approximate least-recently-used eviction at the cost of a plain Map
 * lookup per hit. Two generations: new entries go to the young one; once the bound is
 * reached, each insert evicts the oldest entry of the old generation (through a live
 * iterator, so amortised O(1)), and when the old generation is empty the young one becomes
 * old. A hit in the old generation is promoted to the young one, so an entry in use is
 * evicted at most once per `max` inserts (and then read again from the store once). It holds
 * exactly `max` entries once full. Exact LRU would cost a delete and an insert per hit.
 */
export class BoundedCache<V> {
  private young = new Map<string, V>();
  private old = new Map<string, V>();
  private oldKeys: Iterator<string> = this.old.keys();
  /** Lookups answered and not answered since start (plain integers, exported as metrics). */
  hits = 0;
  misses = 0;

  constructor(readonly max: number) {}

  get(key: string): V | undefined {
    const v = this.young.get(key);
    if (v !== undefined) {
      this.hits++;
      return v;
    }
    const o = this.old.get(key);
    if (o !== undefined) {
      this.hits++;
      this.old.delete(key);
      this.young.set(key, o);
    } else this.misses++;
    return o;
  }

  set(key: string, value: V): void {
    if (this.max === 0) return;
    this.old.delete(key);
    this.young.set(key, value);
    if (this.young.size + this.old.size <= this.max) return;
    if (this.old.size === 0) {
      this.old = this.young;
      this.young = new Map();
      this.oldKeys = this.old.keys();
    }
    const oldest = this.oldKeys.next();
    if (!oldest.done) this.old.delete(oldest.value);
  }

  /** The entry without counting a hit or a miss and without promoting it. */
  peek(key: string): V | undefined {
    return this.young.get(key) ?? this.old.get(key);
  }

  /** Takes over `other`'s entries (a table read afresh), replacing this cache's; `other` is left empty. */
  replaceWith(other: BoundedCache<V>): void {
    this.young = other.young;
    this.old = other.old;
    this.oldKeys = other.oldKeys;
    other.clear();
  }

  /** Every key, young then old (not counted as hits; the caller copies them before the cache changes). */
  *keys(): IterableIterator<string> {
    yield* this.young.keys();
    yield* this.old.keys();
  }

  delete(key: string): void {
    this.young.delete(key);
    this.old.delete(key);
  }

  clear(): void {
    this.young = new Map();
    this.old = new Map();
    this.oldKeys = this.old.keys();
  }

  get size(): number {
    return this.young.size + this.old.size;
  }
}
