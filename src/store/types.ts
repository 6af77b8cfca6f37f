/**
 * The store interface: one contract, several backends (SQLite embedded, PostgreSQL shared),
 * each a folder listed in registry.ts, following the shared rules of rules.ts, checked by one
 * shared suite (test/helpers/store-contract.ts). Backends convert driver errors into
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
 * kind) may have changed and caches must be reloaded. `bucket`, when given, is the object's
 * bucket after the change (a first assignment or a move, as the feed recorded it); absent, the
 * object was deleted or the backend does not know: read it again.
 */
export type ChangeListener = (kind: string | null, name: string | null, bucket?: string) => void;

/** One stored assignment. */
export interface Assignment {
  readonly kind: string;
  readonly name: string;
  readonly bucket: string;
  /** When the object was put on its current bucket, in unix milliseconds. */
  readonly assignedAt: number;
}

/** Who changes assignments, and why: written to the audit log with every change. */
export interface AuditContext {
  /** `cli:<os user>` or `api:<token name>`. */
  readonly actor: string;
  readonly reason?: string | null;
  /** Groups the rows of one migration batch or one import (e.g. `m-<id>/3`). */
  readonly batch?: string | null;
}

export type AuditAction = 'assign' | 'move' | 'delete' | 'migrate' | 'import' | 'repair';
export const AUDIT_ACTIONS: readonly AuditAction[] = ['assign', 'move', 'delete', 'migrate', 'import', 'repair'];

export interface AuditEntry {
  /** Increases with every entry; the audit query's cursor. */
  readonly id: number;
  /** Unix milliseconds. */
  readonly at: number;
  readonly actor: string;
  readonly action: AuditAction;
  readonly kind: string;
  /** The object; null for entries about a whole bucket (count repairs). */
  readonly name: string | null;
  readonly from: string | null;
  readonly to: string | null;
  readonly reason: string | null;
  readonly batch: string | null;
}

export interface AuditQuery {
  readonly kind?: string | undefined;
  readonly name?: string | undefined;
  readonly action?: AuditAction | undefined;
  readonly batch?: string | undefined;
  /** Only entries at or after this time (unix ms). */
  readonly since?: number | undefined;
  /** Only entries with an id below this (the previous page's last id): newest first. */
  readonly before?: number | undefined;
  readonly limit: number;
}

export interface PutResult {
  /** The bucket before, or null when the object had none. */
  readonly from: string | null;
  readonly to: string;
  /** False when the object was already on `to` (nothing written, nothing audited). */
  readonly changed: boolean;
}

export interface MoveRequest {
  readonly name: string;
  /** The bucket the caller saw; the move applies only if the object is still there. */
  readonly from: string;
  readonly to: string;
}

export interface MoveBatchResult {
  /** Names moved (and audited), in request order. */
  readonly moved: readonly string[];
  /**
   * Names not moved because they were no longer on `from` (moved or deleted meanwhile), or
   * because `from` equals `to`.
   */
  readonly stale: readonly string[];
}

export interface ImportRow {
  readonly kind: string;
  readonly name: string;
  readonly bucket: string;
  /** Kept as given; now when absent. */
  readonly assignedAt?: number | undefined;
}

export interface ImportConflict {
  readonly kind: string;
  readonly name: string;
  /** The bucket in the store. */
  readonly existing: string;
  /** The bucket in the imported row. */
  readonly wanted: string;
}

export interface ImportBatchResult {
  /** New objects written. */
  readonly inserted: number;
  /** Rows already stored on the same bucket (nothing written). */
  readonly unchanged: number;
  /** Conflicting rows written over the stored bucket (only with overwrite). */
  readonly overwritten: number;
  /** Conflicting rows left as they were (without overwrite), in input order. */
  readonly conflicts: readonly ImportConflict[];
}

export interface CountFix {
  readonly kind: string;
  readonly bucket: string;
  /** The count kept for the policy before the repair. */
  readonly kept: number;
  /** The real number of assignments, which the kept count now equals. */
  readonly real: number;
}

export interface DuplicateObject {
  readonly kind: string;
  readonly name: string;
  readonly rows: number;
}

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

  /**
   * The whole stored record of an object, or undefined.
   */
  get(kind: string, name: string): Promise<Assignment | undefined>;

  /**
   * Puts an object on `bucket` explicitly, in one transaction with its audit entry: creates the
   * assignment (audit action `assign`) or moves it (`move`; assignedAt becomes now). When the
   * object is already on `bucket`, writes nothing, audits nothing and answers changed: false.
   * With `expect` given (a bucket, or null for "has no assignment"), the write happens only
   * if the object's current bucket is exactly that; otherwise it throws ConflictError
   * (SHARD_ERR_CONFLICT) and writes nothing. Counts follow in the same transaction. The bucket
   * is not checked against any configuration: callers do that.
   */
  put(
    kind: string,
    name: string,
    bucket: string,
    audit: AuditContext,
    opts?: { expect?: string | null },
  ): Promise<PutResult>;

  /**
   * Deletes an object's assignment with its audit entry (`delete`) in one transaction and
   * returns the bucket it was on, or undefined (nothing written or audited) when it had none.
   * With `expect`, deletes only if the object is on that bucket, else throws ConflictError.
   * Its next assign() chooses afresh by the policy.
   */
  delete(kind: string, name: string, audit: AuditContext, opts?: { expect?: string }): Promise<string | undefined>;

  /**
   * One page of a kind's assignments (of one bucket when `bucket` is given), ordered by name
   * in byte order of its UTF-8 encoding, starting after the name `after` (exclusive; omit for
   * the first page), at most `limit` rows. Keyset pagination: a page's last name is the next
   * page's `after`, and objects added or removed meanwhile never make a page repeat or skip
   * an object that was there throughout.
   */
  list(
    kind: string,
    opts: { bucket?: string | undefined; after?: string | undefined; limit: number },
  ): Promise<Assignment[]>;

  /**
   * Moves objects between buckets in ONE transaction: each move applies only if the object is
   * still on its `from` bucket (else it is reported stale and left alone), and each applied
   * move writes an audit entry (action `migrate`, with `audit.batch`). Either every applied
   * move and its audit entry commit, or (on any error) nothing does. assignedAt becomes now.
   */
  moveBatch(kind: string, moves: readonly MoveRequest[], audit: AuditContext): Promise<MoveBatchResult>;

  /**
   * Every assignment (of one kind when given), ordered by kind then name (byte order), read in
   * pages of `pageSize` rows so that memory does not grow with the table. Not a snapshot:
   * rows changed while the iteration runs may be seen in their old or new state, but an
   * object that exists throughout is yielded exactly once.
   */
  export(opts?: { kind?: string | undefined; pageSize?: number | undefined }): AsyncIterable<Assignment>;

  /**
   * Imports rows in ONE transaction, idempotently: a row whose object is absent is inserted
   * (assignedAt as given, else now); a row matching the stored bucket changes nothing; a row
   * naming another bucket than the stored one is a conflict, reported and left alone, or with
   * `overwrite` written over (assignedAt as given, else now). Each written row gets an audit
   * entry (action `import`). Rows are applied in order, so a name repeated within `rows` with
   * another bucket conflicts with its first occurrence.
   */
  importBatch(
    rows: readonly ImportRow[],
    opts: { overwrite: boolean },
    audit: AuditContext,
  ): Promise<ImportBatchResult>;

  /**
   * Audit entries matching the query, newest first (by id), at most `limit`. The next page is
   * asked with `before` set to the last id of this one.
   */
  audit(query: AuditQuery): Promise<AuditEntry[]>;

  /**
   * Sets every kept count (of one kind when given) to the real number of assignments, in one
   * transaction, auditing each correction (action `repair`, to = the bucket, name null), and
   * returns the corrections (empty when the counts were right).
   */
  repairCounts(audit: AuditContext, kind?: string): Promise<CountFix[]>;

  /** Kinds that have at least one assignment, sorted. */
  kinds(): Promise<string[]>;

  /**
   * Objects stored more than once (at most `limit` of them). Always empty while the schema's
   * uniqueness constraint holds; `doctor` asks to prove it.
   */
  duplicates(limit: number): Promise<DuplicateObject[]>;

  /**
   * Starts watching for other processes' changes; returns a function that stops it. Changes
   * made through this same Store object need not be reported: whoever makes them through it
   * invalidates its own caches.
   */
  watch(listener: ChangeListener, pollMs: number): () => void;

  /**
   * Health check (readiness): resolves when the store answers a trivial query and new
   * assignments would be written: after an assignment failed with StoreUnavailableError, it
   * rejects until a write commits again (it tries a small write probe itself; see
   * store/write-health.ts).
   */
  ping(): Promise<void>;

  close(): Promise<void>;
}
