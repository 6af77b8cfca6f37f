/**
 * The runtime view of the configured kinds and buckets. Bucket objects are kept for the life
 * of the process and updated in place on reload, so that cached assignments (which point at
 * them) always see the current upstream, state and precomputed response headers.
 */
import type { BucketPolicyInput, BucketState } from '../core/policy.js';
import type { Config } from '../config/types.js';
import { CookieSigner } from '../http/cookie.js';
import { BoundedCache } from './cache.js';

export class BucketRef implements BucketPolicyInput {
  upstream: string | null = null;
  weight = 1;
  state: BucketState = 'active';
  /** False when the configuration no longer lists this bucket (its objects cannot be routed). */
  inConfig = false;
  /** The /auth answer as a flat header list, computed once per config load. */
  authHeaders: string[] = [];
  /** The Set-Cookie value for this bucket. */
  cookie = '';
  /** The cookie's value alone (signed with cookie.secret), to compare a presented cookie with. */
  cookieToken = '';
  /** Signs and verifies cookie values; null when the cookie is unsigned. */
  signer: CookieSigner | null = null;

  constructor(readonly kind: string, readonly name: string) {}
}

export class KindRuntime {
  /** Configured buckets, in config order (the policy's tie-break order). */
  buckets: BucketRef[] = [];
  private readonly refs = new Map<string, BucketRef>();
  readonly cache: BoundedCache<BucketRef>;

  constructor(readonly name: string, cacheMax: number) {
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

export function cookieValue(config: Config, bucket: string, signer: CookieSigner | null = null): string {
  return `${config.cookie.name}=${signer === null ? bucket : signer.sign(bucket)}; Path=/; HttpOnly; ` + `SameSite=Lax${config.cookie.secure ? '; Secure' : ''}`;
}

/** Builds or updates the runtime kinds from a (validated) configuration. */
export function applyConfig(kinds: Map<string, KindRuntime>, config: Config): void {
  const signer = config.cookie.secret === null ? null : new CookieSigner(config.cookie.secret, config.cookie.name);
  for (const [name, kc] of config.kinds) {
    let kind = kinds.get(name);
    if (kind === undefined) {
      kind = new KindRuntime(name, config.cache.maxEntries);
      kinds.set(name, kind);
    }
    for (const old of kind.buckets) old.inConfig = false;
    kind.buckets = kc.buckets.map((bc) => {
      const ref = kind.ref(bc.name);
      ref.upstream = bc.upstream;
      ref.weight = bc.weight;
      ref.state = bc.state;
      ref.inConfig = true;
      ref.signer = signer;
      ref.cookieToken = signer === null ? bc.name : signer.sign(bc.name);
      ref.cookie = cookieValue(config, bc.name, signer);
      ref.authHeaders = [
        'X-Shard-Bucket', bc.name,
        'X-Shard-Kind', name,
        ...(bc.upstream ? ['X-Shard-Upstream', bc.upstream] : []),
        'Set-Cookie', ref.cookie,
        'Content-Length', '0',
      ];
      return ref;
    });
  }
  for (const [name, kind] of kinds) {
    if (!config.kinds.has(name)) {
      for (const b of kind.buckets) b.inConfig = false;
      kinds.delete(name);
    }
  }
}
