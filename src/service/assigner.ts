/**
 * The decision: identity → bucket. Hits are answered from memory synchronously (assignments
 * are permanent, so a hit never needs the store); misses go to the store once per object at a
 * time (concurrent misses for one object share one store call).
 */
import { StoreUnavailableError, UnknownBucketError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/types.js';
import type { BucketRef, KindRuntime } from './runtime.js';

/** What the assigner reports besides its log lines (metrics, the status page). */
export interface AssignerEvents {
  /** This process made a first assignment. */
  assigned(kind: string, bucket: string): void;
  /** A first assignment waited longer than store.timeout_ms and was answered 503. */
  timedOut(kind: string): void;
}

export class Assigner {
  private readonly inflight = new Map<string, Promise<BucketRef>>();

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
    private readonly timeoutMs: () => number,
    private readonly events?: AssignerEvents,
  ) {}

  /** The object's bucket: a BucketRef at once when cached, else a promise. */
  resolve(kind: KindRuntime, name: string): BucketRef | Promise<BucketRef> {
    const hit = kind.cache.get(name);
    if (hit !== undefined) {
      if (!hit.inConfig) return Promise.reject(new UnknownBucketError(kind.name, hit.name));
      return hit;
    }
    const key = `${kind.name}\0${name}`;
    let p = this.inflight.get(key);
    if (p === undefined) {
      p = this.miss(kind, name).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private async miss(kind: KindRuntime, name: string): Promise<BucketRef> {
    let result;
    try {
      result = await withTimeout(this.store.assign(kind.name, name, kind.buckets), this.timeoutMs());
    } catch (err) {
      if (err instanceof StoreTimeoutError) this.events?.timedOut(kind.name);
      throw err;
    }
    const ref = kind.ref(result.bucket);
    if (result.created) {
      this.log.info({ event: 'assigned', kind: kind.name, name, bucket: ref.name }, 'new assignment');
      this.events?.assigned(kind.name, ref.name);
    }
    kind.cache.set(name, ref);
    if (!ref.inConfig) throw new UnknownBucketError(kind.name, ref.name);
    return ref;
  }
}

/** The store did not answer in time: a StoreUnavailableError (same code and status) the metrics can tell apart. */
class StoreTimeoutError extends StoreUnavailableError {}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreTimeoutError(`the assignment store did not answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
