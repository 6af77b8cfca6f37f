/**
 * The store interface: one contract, several backends (SQLite embedded, PostgreSQL shared),
 * checked by one shared suite (test/store-contract.ts). Backends convert driver errors into
 * ShardErrors at this boundary.
 */
import type { BucketPolicyInput } from '../core/policy.js';

export interface AssignResult {
  readonly bucket: string;
  /** True when this call made the assignment; false when it already existed. */
  readonly created: boolean;
}

/**
 * Called when assignments changed in another process (or connection): `name` is the object
 * whose assignment changed, or null when anything of that kind (or, with kind null, of any
 * kind) may have changed and caches must be dropped.
 */
export type ChangeListener = (kind: string | null, name: string | null) => void;

export interface Store {
  /** "sqlite" or "postgres", for logs and /readyz. */
  readonly backend: string;
  /** Where the store lives, without secrets (a file path, or host:port/db). */
  readonly location: string;

  /** The bucket an object is assigned to, or undefined. */
  lookup(kind: string, name: string): Promise<string | undefined>;

  /**
   * The object's bucket; if it has none, assigns it by the policy over `buckets` (the kind's
   * buckets in config order) in one transaction that also updates the counts, serialised with
   * every other first assignment of the kind so that the choice is emptiest when it commits.
   */
  assign(kind: string, name: string, buckets: readonly BucketPolicyInput[]): Promise<AssignResult>;

  /** Per-bucket counts as kept with the assignments (what the policy uses). */
  counts(kind: string): Promise<Map<string, number>>;

  /** Per-bucket counts by counting the assignments themselves (slow; for checks). */
  realCounts(kind: string): Promise<Map<string, number>>;

  /** Starts watching for other processes' changes; returns a function that stops it. */
  watch(listener: ChangeListener, pollMs: number): () => void;

  /** Health check: resolves when the store answers a trivial query. */
  ping(): Promise<void>;

  close(): Promise<void>;
}
