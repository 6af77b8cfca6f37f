/**
 * The bucket set: the configured kinds and their buckets, as the decision sees them. Bucket
 * objects are kept for the life of the process and updated in place on reload, so that cached
 * assignments (which point at them) always see the current upstream, weight and state. What
 * the HTTP side answers for a bucket (headers, cookie) is precomputed there, keyed by these
 * objects (http/answers.ts).
 */
import type { BucketPolicyInput, BucketState } from './policy.js';
import { BoundedCache } from './cache.js';

export class BucketRef implements BucketPolicyInput {
  upstream: string | null = null;
  weight = 1;
  state: BucketState = 'active';
  /** False when the configuration no longer lists this bucket (its objects cannot be routed). */
  inConfig = false;

  constructor(
    readonly kind: string,
    readonly name: string,
  ) {}
}

export class KindRuntime {
  /** Configured buckets, in config order (the policy's tie-break order). */
  buckets: BucketRef[] = [];
  private readonly refs = new Map<string, BucketRef>();
  readonly cache: BoundedCache<BucketRef>;

  constructor(
    readonly name: string,
    cacheMax: number,
  ) {
    this.cache = new BoundedCache(cacheMax);
  }

  /** The bucket object for a name, created (as not in config) if the store names an unknown one. */
  ref(name: string): BucketRef {
    let r = this.refs.get(name);
    if (r === undefined) {
      r = new BucketRef(this.name, name);
      this.refs.set(name, r);
    }
    return r;
  }

  bucket(name: string): BucketRef | undefined {
    const r = this.refs.get(name);
    return r?.inConfig ? r : undefined;
  }
}

/** A bucket as configured (config/types.ts's BucketConfig is one). */
export interface BucketSpec {
  readonly name: string;
  readonly upstream: string | null;
  readonly weight: number;
  readonly state: BucketState;
}

/** A kind as configured (config/types.ts's KindConfig is one): its buckets in config order. */
export interface KindSpec {
  readonly buckets: readonly BucketSpec[];
}

/** Builds or updates the runtime kinds from the configured ones; `cacheMax` bounds a new kind's cache. */
export function applyKinds(
  kinds: Map<string, KindRuntime>,
  specs: ReadonlyMap<string, KindSpec>,
  cacheMax: number,
): void {
  for (const [name, kc] of specs) {
    let kind = kinds.get(name);
    if (kind === undefined) {
      kind = new KindRuntime(name, cacheMax);
      kinds.set(name, kind);
    }
    for (const old of kind.buckets) old.inConfig = false;
    kind.buckets = kc.buckets.map((bc) => {
      const ref = kind.ref(bc.name);
      ref.upstream = bc.upstream;
      ref.weight = bc.weight;
      ref.state = bc.state;
      ref.inConfig = true;
      return ref;
    });
  }
  for (const [name, kind] of kinds) {
    if (!specs.has(name)) {
      for (const b of kind.buckets) b.inConfig = false;
      kinds.delete(name);
    }
  }
}
