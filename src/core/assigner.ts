/**
 * The decision: identity → bucket. Hits are answered from memory synchronously (assignments
 * are permanent, so a hit never needs the store); misses go to the store once per object at a
 * time (concurrent misses for one object share one store call).
 *
 * A move or delete announced while a miss for the same object is in flight (possible whenever
 * lookups are asynchronous, as PostgreSQL's are) may have happened after the store read the
 * old bucket: invalidate() marks that flight, which then neither caches that answer nor hands
 * it out, but reads again. Requests that join the flight after the announcement so also get
 * an answer read after it.
 */
import { StoreUnavailableError, UnknownBucketError } from '../errors.js';
import type { BucketRef, KindRuntime } from './buckets.js';
import type { Assigned, AssignmentSource, EventLog } from './ports.js';

/** Store reads of one miss when every answer was overtaken by an invalidation (a name moved
 * again and again); the last answer is then returned uncached. */
const MAX_READS = 3;

interface Flight {
  readonly kind: string;
  promise?: Promise<BucketRef>;
  /** Set when a change of this object (or of its whole kind) was announced since its current read began. */
  invalidated: boolean;
  /** The bucket the last such announcement named (a first assignment or a move with its
   * bucket, from the change feed): newer than the read, so it is the answer, without a re-read. */
  latest: string | undefined;
}

/** What the assigner reports besides its log lines (metrics, the status page). */
export interface AssignerEvents {
  /** This process made a first assignment. */
  assigned(kind: string, bucket: string, name: string): void;
  /** A first assignment waited longer than store.timeout_ms and was answered 503. */
  timedOut(kind: string): void;
}

export class Assigner {
  private readonly inflight = new Map<string, Flight>();

  constructor(
    private readonly store: AssignmentSource,
    private readonly log: EventLog,
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
    let f = this.inflight.get(key);
    if (f === undefined) {
      const flight: Flight = { kind: kind.name, invalidated: false, latest: undefined };
      flight.promise = this.miss(kind, name, flight).finally(() => {
        if (this.inflight.get(key) === flight) this.inflight.delete(key);
      });
      this.inflight.set(key, flight);
      f = flight;
    }
    return f.promise!;
  }

  /**
   * Called with every change announcement (the store's watcher, and this process's own admin
   * operations), alongside updating the table (table.ts): `name` null means the whole kind,
   * `kind` null every kind; `bucket` is the object's bucket after the change when known.
   */
  invalidate(kind: string | null, name: string | null, bucket?: string): void {
    if (kind !== null && name !== null) {
      const f = this.inflight.get(`${kind}\0${name}`);
      if (f !== undefined) {
        f.invalidated = true;
        f.latest = bucket;
      }
      return;
    }
    for (const f of this.inflight.values()) {
      if (kind === null || f.kind === kind) {
        f.invalidated = true;
        f.latest = undefined;
      }
    }
  }

  private async miss(kind: KindRuntime, name: string, flight: Flight): Promise<BucketRef> {
    let result: Assigned;
    let reads = 0;
    for (;;) {
      flight.invalidated = false;
      flight.latest = undefined;
      try {
        result = await withTimeout(this.store.assign(kind.name, name, kind.buckets), this.timeoutMs());
      } catch (err) {
        if (err instanceof StoreTimeoutError) this.events?.timedOut(kind.name);
        throw err;
      }
      reads++;
      if (!flight.invalidated || reads >= MAX_READS) break;
      if (flight.latest !== undefined) {
        result = { bucket: flight.latest, created: result.created };
        break;
      }
    }
    const ref = kind.ref(result.bucket);
    if (result.created) {
      this.log.info({ event: 'assigned', kind: kind.name, name, bucket: ref.name }, 'new assignment');
      this.events?.assigned(kind.name, ref.name, name);
    }
    if (!flight.invalidated) kind.cache.set(name, ref);
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
