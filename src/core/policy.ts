/**
 * The bucket choice: a pure function of (buckets in config order, counts). No database, no
 * clock. "Emptiest bin": among active buckets, the smallest (count + 1) / weight; ties go to
 * the bucket listed first. Draining buckets keep their objects but are never chosen.
 */

export type BucketState = 'active' | 'draining';

export interface BucketPolicyInput {
  readonly name: string;
  readonly weight: number;
  readonly state: BucketState;
}

/** Number of objects per bucket name; a missing bucket counts as 0. */
export type Counts = ReadonlyMap<string, number>;

/**
 * Returns the name of the bucket a new object goes to, or undefined when no bucket is active.
 * Comparing (a+1)/wa < (b+1)/wb as (a+1)*wb < (b+1)*wa keeps integer weights exact, so that
 * weights 1:2:3 fill to exactly 100/200/300 with no floating-point drift deciding ties.
 */
export function chooseBucket(buckets: readonly BucketPolicyInput[], counts: Counts): string | undefined {
  let best: BucketPolicyInput | undefined;
  let bestLoad = 0;
  for (const b of buckets) {
    if (b.state !== 'active' || !(b.weight > 0)) continue;
    const load = (counts.get(b.name) ?? 0) + 1;
    if (best === undefined || load * best.weight < bestLoad * b.weight) {
      best = b;
      bestLoad = load;
    }
  }
  return best?.name;
}
