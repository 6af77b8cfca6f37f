/**
 * The rules every store backend follows, written once and kept pure (no driver, no I/O, no
 * clock): what a conflict says, how an import batch decides row by row, how a count repair
 * finds its corrections, how stored rows become Assignments and AuditEntries, which
 * migrations are still to run, and which filters an audit query has. A backend reads rows,
 * calls these, and writes what they decide; test/unit/store-rules.test.ts checks them with plain
 * objects, and the shared contract suite checks that each backend applies them.
 */
import { chooseBucket, type BucketPolicyInput } from '../core/policy.js';
import { ConflictError, NoBucketError, SchemaTooNewError } from '../errors.js';
import type {
  AssignResult,
  Assignment,
  AuditAction,
  AuditEntry,
  AuditQuery,
  CountFix,
  ImportBatchResult,
  ImportConflict,
  ImportRow,
} from './types.js';

// ---------------------------------------------------------------------------------------------
// First assignments of a batch (under the kind lock, on the shared-database backends).

/**
 * Decides a batch of first assignments of one kind, one at a time, each seeing the counts the
 * previous ones left, so that the batch commits as if its assignments had been made one after
 * another: a name already stored (or earlier in the batch) keeps its bucket; a new one goes to
 * the emptiest bucket by the policy, or is a NoBucketError. `existing` and `counts` are what
 * the transaction read under the lock; the rows to insert are returned in order.
 */
export function planAssignments(
  kind: string,
  items: readonly { readonly name: string; readonly buckets: readonly BucketPolicyInput[] }[],
  existing: ReadonlyMap<string, string>,
  counts: ReadonlyMap<string, number>,
): { results: (AssignResult | NoBucketError)[]; inserts: { name: string; bucket: string }[] } {
  const known = new Map(existing);
  const kept = new Map(counts);
  const results: (AssignResult | NoBucketError)[] = [];
  const inserts: { name: string; bucket: string }[] = [];
  for (const item of items) {
    const had = known.get(item.name);
    if (had !== undefined) {
      results.push({ bucket: had, created: false });
      continue;
    }
    const bucket = chooseBucket(item.buckets, kept);
    if (bucket === undefined) {
      results.push(new NoBucketError(kind));
      continue;
    }
    kept.set(bucket, (kept.get(bucket) ?? 0) + 1);
    known.set(item.name, bucket);
    inserts.push({ name: item.name, bucket });
    results.push({ bucket, created: true });
  }
  return { results, inserts };
}

// ---------------------------------------------------------------------------------------------
// Conflicts of a conditional put or delete (the `expect` option of Store.put and Store.delete).

/** Thrown by put() when the object's bucket is not `expect` (null: "has no assignment"). */
/** The four statements list() reads a page with: of a kind or of one bucket, the first page or after a name. */
export interface ListStatements<S> {
  readonly listFirst: S;
  readonly listAfter: S;
  readonly listBucketFirst: S;
  readonly listBucketAfter: S;
}

/** Which statement reads this page of list(), with its parameters in order: the same on every backend. */
export function listPage<S>(
  statements: ListStatements<S>,
  kind: string,
  opts: { bucket?: string | undefined; after?: string | undefined; limit: number },
): { statement: S; params: (string | number)[] } {
  const { bucket, after, limit } = opts;
  if (bucket === undefined) {
    return after === undefined
      ? { statement: statements.listFirst, params: [kind, limit] }
      : { statement: statements.listAfter, params: [kind, after, limit] };
  }
  return after === undefined
    ? { statement: statements.listBucketFirst, params: [kind, bucket, limit] }
    : { statement: statements.listBucketAfter, params: [kind, bucket, after, limit] };
}

export function putConflict(kind: string, name: string, from: string | null, expect: string | null): ConflictError {
  return new ConflictError(
    `"${name}" of kind "${kind}" is ${from === null ? 'not assigned' : `on "${from}"`}, not ` +
      `${expect === null ? 'unassigned' : `on "${expect}"`} as expected: it changed meanwhile; nothing was ` +
      'written',
  );
}

/** Thrown by delete() when the object is not on `expect`. */
export function deleteConflict(kind: string, name: string, from: string | undefined, expect: string): ConflictError {
  return new ConflictError(
    `"${name}" of kind "${kind}" is ${from === undefined ? 'not assigned' : `on "${from}"`}, not on ` +
      `"${expect}" as expected: it changed meanwhile; nothing was deleted`,
  );
}

// ---------------------------------------------------------------------------------------------
// Import plan (Store.importBatch).

/** One key per object, for maps of (kind, name). */
export const objectKey = (kind: string, name: string): string => `${kind}\0${name}`;

/** The objects an import batch touches, once each, in first-seen order: what to read (and lock) first. */
export function importObjects(rows: readonly ImportRow[]): { kind: string; name: string }[] {
  const out = new Map<string, { kind: string; name: string }>();
  for (const r of rows)
    if (!out.has(objectKey(r.kind, r.name))) out.set(objectKey(r.kind, r.name), { kind: r.kind, name: r.name });
  return [...out.values()];
}

/** An audit entry a write of the store produces (the context's actor, batch and reason are added by the backend). */
export interface AuditChange {
  readonly kind: string;
  readonly name: string | null;
  readonly from: string | null;
  readonly to: string | null;
  /** Replaces the context's reason (count repairs say what they corrected). */
  readonly reason?: string | null;
}

export interface ImportPlan {
  /** Objects absent from the store: insert the row (each object's final row). */
  readonly inserts: readonly ImportRow[];
  /** Objects stored on another bucket, overwritten: the row to write and the bucket stored before. */
  readonly updates: readonly { readonly row: ImportRow; readonly from: string }[];
  /** One entry per written row, in input order. */
  readonly audit: readonly AuditChange[];
  readonly result: ImportBatchResult;
}

/**
 * Decides an import batch row by row, in input order, as if each row were applied before the
 * next is read: a row whose object is absent is inserted; one naming the stored bucket changes
 * nothing; one naming another bucket is a conflict, or with `overwrite` is written over. A
 * name repeated within the batch is judged against its earlier row. `stored` holds the
 * buckets stored before the batch, by objectKey.
 */
export function planImport(
  rows: readonly ImportRow[],
  stored: ReadonlyMap<string, string>,
  overwrite: boolean,
): ImportPlan {
  const current = new Map(stored);
  const writes = new Map<string, ImportRow>();
  const audit: AuditChange[] = [];
  const conflicts: ImportConflict[] = [];
  let inserted = 0;
  let unchanged = 0;
  let overwritten = 0;
  for (const r of rows) {
    const k = objectKey(r.kind, r.name);
    const existing = current.get(k);
    if (existing === undefined) {
      inserted++;
    } else if (existing === r.bucket) {
      unchanged++;
      continue;
    } else if (overwrite) {
      overwritten++;
    } else {
      conflicts.push({ kind: r.kind, name: r.name, existing, wanted: r.bucket });
      continue;
    }
    current.set(k, r.bucket);
    writes.set(k, r);
    audit.push({ kind: r.kind, name: r.name, from: existing ?? null, to: r.bucket });
  }
  const inserts: ImportRow[] = [];
  const updates: { row: ImportRow; from: string }[] = [];
  for (const [k, row] of writes) {
    const from = stored.get(k);
    if (from === undefined) inserts.push(row);
    else updates.push({ row, from });
  }
  return { inserts, updates, audit, result: { inserted, unchanged, overwritten, conflicts } };
}

// ---------------------------------------------------------------------------------------------
// Count repair (Store.repairCounts).

export interface CountRow {
  readonly kind: string;
  readonly bucket: string;
  /** A driver may hand a bigint over as a string. */
  readonly count: number | string;
}

/**
 * The corrections that make every kept count (of `kind`, when given) equal the real one, in
 * (kind, bucket) order: the order in which the backends lock count rows.
 */
export function countFixes(kept: readonly CountRow[], real: readonly CountRow[], kind?: string): CountFix[] {
  const index = (list: readonly CountRow[]): Map<string, CountRow> => {
    const m = new Map<string, CountRow>();
    for (const r of list) if (kind === undefined || r.kind === kind) m.set(objectKey(r.kind, r.bucket), r);
    return m;
  };
  const k = index(kept);
  const r = index(real);
  const fixes: CountFix[] = [];
  for (const key of new Set([...k.keys(), ...r.keys()])) {
    const row = (r.get(key) ?? k.get(key))!;
    const was = Number(k.get(key)?.count ?? 0);
    const is = Number(r.get(key)?.count ?? 0);
    if (was !== is) fixes.push({ kind: row.kind, bucket: row.bucket, kept: was, real: is });
  }
  return fixes.sort((a, b) => (a.kind === b.kind ? (a.bucket < b.bucket ? -1 : 1) : a.kind < b.kind ? -1 : 1));
}

/** The audit entry of one count correction (action `repair`: to = the bucket, name null). */
export function repairEntry(fix: CountFix, reason: string | null | undefined): AuditChange {
  return {
    kind: fix.kind,
    name: null,
    from: null,
    to: fix.bucket,
    reason: `count of "${fix.bucket}" was ${fix.kept}, real ${fix.real}${reason ? `: ${reason}` : ''}`,
  };
}

// ---------------------------------------------------------------------------------------------
// Row mappers: the column names every backend's schema uses.

export interface AssignmentRow {
  readonly kind: string;
  readonly name: string;
  readonly bucket: string;
  /** Unix milliseconds; a bigint column may arrive as a string. */
  readonly assigned_at: number | string;
}

export interface AuditRow {
  readonly id: number | string;
  readonly at: number | string;
  readonly actor: string;
  readonly action: AuditAction;
  readonly kind: string;
  readonly name: string | null;
  readonly from_bucket: string | null;
  readonly to_bucket: string | null;
  readonly reason: string | null;
  readonly batch: string | null;
}

export const toAssignment = (r: AssignmentRow): Assignment => ({
  kind: r.kind,
  name: r.name,
  bucket: r.bucket,
  assignedAt: Number(r.assigned_at),
});

export const toAuditEntry = (r: AuditRow): AuditEntry => ({
  id: Number(r.id),
  at: Number(r.at),
  actor: r.actor,
  action: r.action,
  kind: r.kind,
  name: r.name,
  from: r.from_bucket,
  to: r.to_bucket,
  reason: r.reason,
  batch: r.batch,
});

// ---------------------------------------------------------------------------------------------
// Migrations.

/** One versioned schema change; each backend lists its own, numbered from 1. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/**
 * The migrations still to run on a database at version `current`, in order; a database newer
 * than this sharder knows is refused (SchemaTooNewError), never written to. The backend runs
 * them under its own lock, each recorded in schema_migrations.
 */
export function pendingMigrations(migrations: readonly Migration[], current: number): Migration[] {
  const known = migrations.at(-1)?.version ?? 0;
  if (current > known) throw new SchemaTooNewError(current, known);
  return migrations.filter((m) => m.version > current);
}

// ---------------------------------------------------------------------------------------------
// Audit queries (Store.audit).

/** How a backend writes a parameter and a unix-milliseconds comparison. */
export interface AuditDialect {
  /** The placeholder of the n-th value (1-based): `?` or `$n`. */
  param(n: number): string;
  /** `at >= <p>` in the backend's time type. */
  readonly since: (p: string) => string;
  /** The select list and table: `SELECT … FROM audit`. */
  readonly select: string;
}

/**
 * The audit query for the filters given, newest first: only the filters present become
 * conditions (each an index-friendly equality or range), the limit last.
 */
export function auditQuery(q: AuditQuery, d: AuditDialect): { text: string; values: unknown[] } {
  const where: string[] = [];
  const values: unknown[] = [];
  const filter = (cond: (p: string) => string, value: unknown): void => {
    if (value === undefined) return;
    values.push(value);
    where.push(cond(d.param(values.length)));
  };
  filter((p) => `kind = ${p}`, q.kind);
  filter((p) => `name = ${p}`, q.name);
  filter((p) => `action = ${p}`, q.action);
  filter((p) => `batch = ${p}`, q.batch);
  filter(d.since, q.since);
  filter((p) => `id < ${p}`, q.before);
  values.push(q.limit);
  const clause = where.length > 0 ? ` WHERE ${where.join(' AND ')}` : '';
  const text = `${d.select}${clause} ORDER BY id DESC LIMIT ${d.param(values.length)}`;
  return { text, values };
}
