/**
 * New assignments made by this process, per kind and bucket: a total since start (the
 * `sharder_assignments_total` counter) and a sliding hour in one-minute slots (the status
 * page's "new in the last hour").
 *
 * Kept in memory rather than asked of the store: the assignments table's `assigned_at` is also
 * reset by moves, migrations and imports (so it cannot tell a new object from a moved one),
 * and a range query on it would need another index on the largest table, written on every
 * first assignment, for a page viewed now and then. The cost is scope: the numbers are this
 * instance's (with `workers: N`, all its workers, gathered through the cluster primary), so
 * with several sharder instances on one PostgreSQL each page shows its own instance's share;
 * the Grafana dashboard sums the counter over instances.
 */

/** One slot per minute: the last hour is the current minute and the 59 before it. */
const SLOTS = 60;
const SLOT_MS = 60_000;
export const HOUR_MS = SLOTS * SLOT_MS;

class BucketCounts {
  total = 0;
  /** Count per slot, and the minute (since the epoch) each slot counts. */
  readonly slots = new Float64Array(SLOTS);
  readonly minutes = new Float64Array(SLOTS).fill(-1);
}

/** What `recent()` returns: per kind, per bucket, assignments in the last hour. */
export interface RecentView {
  /** Since when the counts are complete (unix ms): the hour ago, or the process start if later. */
  readonly since: number;
  readonly counts: Record<string, Record<string, number>>;
}

export class AssignmentCounter {
  private readonly byKind = new Map<string, Map<string, BucketCounts>>();
  readonly startedAt: number;

  constructor(private readonly now: () => number = Date.now) {
    this.startedAt = now();
  }

  record(kind: string, bucket: string): void {
    let k = this.byKind.get(kind);
    if (k === undefined) this.byKind.set(kind, (k = new Map<string, BucketCounts>()));
    let b = k.get(bucket);
    if (b === undefined) k.set(bucket, (b = new BucketCounts()));
    b.total++;
    const minute = Math.floor(this.now() / SLOT_MS);
    const i = minute % SLOTS;
    if (b.minutes[i] !== minute) {
      b.minutes[i] = minute;
      b.slots[i] = 0;
    }
    b.slots[i]!++;
  }

  /** Totals since start: [kind, bucket, count]. */
  *totals(): Iterable<[string, string, number]> {
    for (const [kind, buckets] of this.byKind) for (const [bucket, c] of buckets) yield [kind, bucket, c.total];
  }

  recent(): RecentView {
    const now = this.now();
    const minute = Math.floor(now / SLOT_MS);
    const counts: Record<string, Record<string, number>> = {};
    for (const [kind, buckets] of this.byKind) {
      const out: Record<string, number> = (counts[kind] = {});
      for (const [bucket, c] of buckets) {
        let n = 0;
        for (let i = 0; i < SLOTS; i++) if (c.minutes[i]! > minute - SLOTS) n += c.slots[i]!;
        out[bucket] = n;
      }
    }
    return { since: Math.max(now - HOUR_MS, this.startedAt), counts };
  }
}

/** Several processes' views as one: counts added, complete since the latest start. */
export function mergeRecent(views: readonly RecentView[]): RecentView {
  const counts: Record<string, Record<string, number>> = {};
  let since = 0;
  for (const v of views) {
    since = Math.max(since, v.since);
    // Own keys only: a kind or bucket may be called "constructor" or "toString".
    for (const [kind, buckets] of Object.entries(v.counts)) {
      const out = Object.hasOwn(counts, kind) ? counts[kind]! : (counts[kind] = {});
      for (const [bucket, n] of Object.entries(buckets))
        out[bucket] = (Object.hasOwn(out, bucket) ? out[bucket]! : 0) + n;
    }
  }
  return { since, counts };
}
