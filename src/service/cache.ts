/**
 * A bounded map with approximate least-recently-used eviction at the cost of a plain Map
 * lookup per hit: two generations, the young one filled until it holds half the bound, then
 * it becomes the old one (the previous old one is dropped). A hit in the old generation is
 * promoted. Size never exceeds `max`. Exact LRU would cost a delete and an insert per hit.
 */
export class BoundedCache<V> {
  private young = new Map<string, V>();
  private old = new Map<string, V>();
  private readonly half: number;

  constructor(readonly max: number) {
    this.half = Math.max(1, Math.floor(max / 2));
  }

  get(key: string): V | undefined {
    const v = this.young.get(key);
    if (v !== undefined) return v;
    const o = this.old.get(key);
    if (o !== undefined) {
      this.old.delete(key);
      this.set(key, o);
    }
    return o;
  }

  set(key: string, value: V): void {
    if (this.max === 0) return;
    this.young.set(key, value);
    if (this.young.size >= this.half) {
      this.old = this.young;
      this.young = new Map();
    }
  }

  delete(key: string): void {
    this.young.delete(key);
    this.old.delete(key);
  }

  clear(): void {
    this.young = new Map();
    this.old = new Map();
  }

  get size(): number {
    return this.young.size + this.old.size;
  }
}
