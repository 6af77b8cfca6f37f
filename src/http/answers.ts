/**
 * What the HTTP side answers for each bucket, precomputed at start and on every reload: the
 * /auth header list, the Set-Cookie value and the cookie's signed token. Kept by bucket object
 * (the core's BucketRef, which lives as long as the process), so that the /auth hit path is
 * one lookup and writes bytes made once: no allocation per request.
 */
import type { BucketRef, KindRuntime } from '../core/buckets.js';
import type { Config } from '../config/types.js';
import { CookieSigner } from './cookie.js';

export interface BucketAnswer {
  /** The /auth answer as a flat header list. */
  readonly authHeaders: string[];
  /** The Set-Cookie value for this bucket. */
  readonly cookie: string;
  /** The cookie's value alone (signed with cookie.secret), to compare a presented cookie with. */
  readonly cookieToken: string;
  /** Signs and verifies cookie values; null when the cookie is unsigned. */
  readonly signer: CookieSigner | null;
}

export function cookieValue(cookie: Config['cookie'], bucket: string, signer: CookieSigner | null = null): string {
  return (
    `${cookie.name}=${signer === null ? bucket : signer.sign(bucket)}; Path=/; HttpOnly; ` +
    `SameSite=Lax${cookie.secure ? '; Secure' : ''}`
  );
}

export class Answers {
  /**
   * By bucket object. A bucket the configuration no longer lists keeps its last answer, for a
   * request that was placed on it just before the reload (as when the answer lived on the bucket).
   */
  private readonly byBucket = new WeakMap<BucketRef, BucketAnswer>();

  /** Computes every configured bucket's answer (after the core's bucket set was updated). */
  apply(kinds: ReadonlyMap<string, KindRuntime>, cookie: Config['cookie']): void {
    const signer = cookie.secret === null ? null : new CookieSigner(cookie.secret, cookie.name);
    for (const [name, kind] of kinds) {
      for (const b of kind.buckets) {
        const value = cookieValue(cookie, b.name, signer);
        this.byBucket.set(b, {
          authHeaders: [
            'X-Shard-Bucket',
            b.name,
            'X-Shard-Kind',
            name,
            ...(b.upstream ? ['X-Shard-Upstream', b.upstream] : []),
            'Set-Cookie',
            value,
            'Content-Length',
            '0',
          ],
          cookie: value,
          cookieToken: signer === null ? b.name : signer.sign(b.name),
          signer,
        });
      }
    }
  }

  /** The bucket's answer; every bucket the assigner hands out has one (it is configured, or was). */
  of(bucket: BucketRef): BucketAnswer {
    return this.byBucket.get(bucket)!;
  }
}
