/**
 * First assignments on a shared database (PostgreSQL, MariaDB), batched per kind: concurrent
 * lookups of one kind share one query, and the names still unknown share one assignment
 * transaction, one such transaction per kind at a time (they would queue on the kind lock
 * anyway). The backend gives the two queries; the batching (batcher.ts), the retries and the
 * readiness bookkeeping (write-health.ts) are the same for every such backend.
 */
import type { BucketPolicyInput } from '../core/policy.js';
import { Batcher, type BatchResult } from './batcher.js';
import type { AssignResult } from './types.js';
import { WriteHealth } from './write-health.js';

/** Most names in one lookup query or one assignment transaction. */
export const MAX_BATCH = 1_000;

export interface AssignInput {
  readonly name: string;
  readonly buckets: readonly BucketPolicyInput[];
}

export interface GroupCommitBackend {
  /** The stored buckets of `names` (unique), by name. */
  lookupMany(kind: string, names: string[]): Promise<Map<string, string>>;
  /** One assignment transaction under the kind lock (store/rules.ts planAssignments decides). */
  assignMany(kind: string, items: AssignInput[]): Promise<BatchResult<AssignResult>[]>;
  /** Concurrent lookup queries (leave connections for assignments and the change feed). */
  readonly lookupConcurrency: number;
  /** True for an error worth repeating the whole call for (a lost connection, a racing writer's duplicate key). */
  retryable: (err: unknown, attempt: number) => boolean;
}

/** Repeats `fn` while `retryable` says so, pausing a little longer each time. */
export async function retrying<T>(
  fn: () => Promise<T>,
  retryable: (err: unknown, attempt: number) => boolean,
  pauseMs = 20,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!retryable(err, attempt)) throw err;
      await new Promise((r) => setTimeout(r, pauseMs * attempt));
    }
  }
}

export class GroupCommit {
  private readonly lookups = new Map<string, Batcher<string, string | undefined>>();
  private readonly assigns = new Map<string, Batcher<AssignInput, AssignResult>>();
  /** Assignment failures, for readiness (Store.ping). */
  readonly writes = new WriteHealth();

  constructor(private readonly backend: GroupCommitBackend) {}

  lookup(kind: string, name: string): Promise<string | undefined> {
    let b = this.lookups.get(kind);
    if (b === undefined) {
      b = new Batcher(
        async (names) => {
          const found = await retrying(
            () => this.backend.lookupMany(kind, [...new Set(names)]),
            this.backend.retryable,
          );
          return names.map((n) => found.get(n));
        },
        MAX_BATCH,
        this.backend.lookupConcurrency,
      );
      this.lookups.set(kind, b);
    }
    return b.push(name);
  }

  /** A plain lookup first (most misses were assigned earlier, elsewhere); the rest in one transaction per kind. */
  assign(kind: string, name: string, buckets: readonly BucketPolicyInput[]): Promise<AssignResult> {
    return this.writes.follow(
      (async () => {
        const existing = await this.lookup(kind, name);
        if (existing !== undefined) return { bucket: existing, created: false };
        let b = this.assigns.get(kind);
        if (b === undefined) {
          b = new Batcher(
            (items) => retrying(() => this.backend.assignMany(kind, items), this.backend.retryable),
            MAX_BATCH,
            1,
          );
          this.assigns.set(kind, b);
        }
        return b.push({ name, buckets });
      })(),
      (r) => r.created,
    );
  }
}
