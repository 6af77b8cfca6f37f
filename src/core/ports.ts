/**
 * What the core needs from the world outside it, declared here so that the core imports no
 * store backend, no logger and no configuration loader: the store's interface
 * (store/types.ts) and the project's logger (log.ts) satisfy these as they are.
 */
import type { BucketPolicyInput } from './policy.js';

/** The bucket an object is on, and whether this call put it there. */
export interface Assigned {
  readonly bucket: string;
  readonly created: boolean;
}

/** The assignment store, as far as the assigner and the in-memory table read it. */
export interface AssignmentSource {
  /** The object's bucket, choosing one by the policy (and storing it) when it has none. */
  assign(kind: string, name: string, buckets: readonly BucketPolicyInput[]): Promise<Assigned>;
  lookup(kind: string, name: string): Promise<string | undefined>;
  /** Objects per bucket of a kind. */
  counts(kind: string): Promise<ReadonlyMap<string, number>>;
  /** One page of a kind's assignments, ordered by name, after `after`. */
  list(
    kind: string,
    opts: { after?: string | undefined; limit: number },
  ): Promise<ReadonlyArray<{ readonly name: string; readonly bucket: string }>>;
}

/** One JSON log line per event: the fields, then the message. */
export interface EventLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}
