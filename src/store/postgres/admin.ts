/**
 * The admin primitives of the PostgreSQL backend (explicit assignment, moves, deletes,
 * imports, count repairs): transaction bodies run by PostgresStore.transaction, with the same
 * semantics as SQLite's (see the Store interface in types.ts).
 *
 * Locks, in the order documented in schema.ts: each write first takes the kind lock
 * of every kind it touches, as first assignments do. So an admin write never interleaves with
 * a first assignment of its kind (which then sees the counts the write left, and cannot race
 * it into a unique violation), and the bucket_counts rows of a kind are only locked by the
 * holder of its kind lock: two admin writes, or an admin write and an assignment, can never
 * wait for each other's count rows in opposite orders. A transaction that may UPDATE or
 * DELETE after it INSERTed takes the change-feed lock before its first write, because the
 * UPDATE/DELETE triggers take that lock and an INSERT's trigger has already locked count rows.
 */
import type pg from 'pg';
import { SQL } from './schema.js';
import {
  countFixes,
  deleteConflict,
  importObjects,
  objectKey,
  planImport,
  putConflict,
  repairEntry,
  type AuditChange,
} from '../rules.js';
import type {
  AuditAction,
  AuditContext,
  CountFix,
  ImportBatchResult,
  ImportRow,
  MoveBatchResult,
  MoveRequest,
  PutResult,
} from '../types.js';

type Client = pg.PoolClient;

/** Writes audit entries (ids in the order of `rows`). */
async function writeAudit(
  c: Client,
  audit: AuditContext,
  action: AuditAction,
  rows: readonly AuditChange[],
): Promise<void> {
  if (rows.length === 0) return;
  await c.query(SQL.auditMany, [
    audit.actor,
    action,
    audit.batch ?? null,
    rows.map((r) => r.kind),
    rows.map((r) => r.name),
    rows.map((r) => r.from),
    rows.map((r) => r.to),
    rows.map((r) => (r.reason !== undefined ? r.reason : (audit.reason ?? null))),
  ]);
}

async function lockKinds(c: Client, kinds: Iterable<string>): Promise<void> {
  const list = [...new Set(kinds)];
  if (list.length === 1) await c.query(SQL.lockKind, [list[0]]);
  else if (list.length > 1) await c.query(SQL.lockKinds, [list]);
}

async function currentBucket(c: Client, kind: string, name: string): Promise<string | null> {
  const { rows } = await c.query<{ bucket: string }>(SQL.bucketForUpdate, [kind, name]);
  return rows[0]?.bucket ?? null;
}

export async function putTx(
  c: Client,
  kind: string,
  name: string,
  bucket: string,
  audit: AuditContext,
  expect: string | null | undefined,
): Promise<PutResult> {
  await lockKinds(c, [kind]);
  const from = await currentBucket(c, kind, name);
  if (expect !== undefined && expect !== from) {
    throw putConflict(kind, name, from, expect);
  }
  if (from === bucket) return { from, to: bucket, changed: false };
  if (from === null) await c.query(SQL.insertOne, [kind, name, bucket]);
  else await c.query(SQL.moveOne, [kind, name, from, bucket]);
  await writeAudit(c, audit, from === null ? 'assign' : 'move', [{ kind, name, from, to: bucket }]);
  return { from, to: bucket, changed: true };
}

export async function deleteTx(
  c: Client,
  kind: string,
  name: string,
  audit: AuditContext,
  expect: string | undefined,
): Promise<string | undefined> {
  await lockKinds(c, [kind]);
  const from = (await currentBucket(c, kind, name)) ?? undefined;
  if (expect !== undefined && expect !== from) {
    throw deleteConflict(kind, name, from, expect);
  }
  if (from === undefined) return undefined;
  await c.query(SQL.deleteOne, [kind, name, from]);
  await writeAudit(c, audit, 'delete', [{ kind, name, from, to: null }]);
  return from;
}

/**
 * One UPDATE per round: round r holds the r-th request for each name, so a name asked twice
 * (a → b, then b → c) behaves as SQLite's request-by-request loop does. Almost always one
 * round, and so one statement, however large the batch.
 */
export async function moveBatchTx(
  c: Client,
  kind: string,
  moves: readonly MoveRequest[],
  audit: AuditContext,
): Promise<MoveBatchResult> {
  await lockKinds(c, [kind]);
  const seen = new Map<string, number>();
  const roundOf = moves.map((m) => {
    const r = seen.get(m.name) ?? 0;
    seen.set(m.name, r + 1);
    return r;
  });
  const rounds = Math.max(0, ...roundOf.map((r) => r + 1));
  if (rounds > 1) await c.query(SQL.lockChanges);
  const movedIn: Set<string>[] = [];
  for (let r = 0; r < rounds; r++) {
    const these = moves.filter((_, i) => roundOf[i] === r);
    const { rows } = await c.query<{ name: string }>(SQL.moveMany, [
      kind,
      these.map((m) => m.name),
      these.map((m) => m.from),
      these.map((m) => m.to),
    ]);
    movedIn.push(new Set(rows.map((x) => x.name)));
  }
  const moved: string[] = [];
  const stale: string[] = [];
  const entries: AuditChange[] = [];
  moves.forEach((m, i) => {
    if (movedIn[roundOf[i]!]!.has(m.name)) {
      moved.push(m.name);
      entries.push({ kind, name: m.name, from: m.from, to: m.to });
    } else stale.push(m.name);
  });
  await writeAudit(c, audit, 'migrate', entries);
  return { moved, stale };
}

/**
 * Reads the stored buckets of every row's object (row-locked), decides row by row in input
 * order (store/rules.ts planImport), then writes all inserts in one statement and all
 * overwrites in another (each object's final state), and the audit entries in input order.
 */
export async function importTx(
  c: Client,
  rows: readonly ImportRow[],
  overwrite: boolean,
  audit: AuditContext,
): Promise<ImportBatchResult> {
  await lockKinds(
    c,
    rows.map((r) => r.kind),
  );
  if (overwrite) await c.query(SQL.lockChanges);
  const objects = importObjects(rows);
  const stored = new Map<string, string>();
  if (objects.length > 0) {
    const found = await c.query<{ kind: string; name: string; bucket: string }>(SQL.existingPairs, [
      objects.map((p) => p.kind),
      objects.map((p) => p.name),
    ]);
    for (const r of found.rows) stored.set(objectKey(r.kind, r.name), r.bucket);
  }
  const plan = planImport(rows, stored, overwrite);
  const columns = (list: readonly ImportRow[]): unknown[] => [
    list.map((r) => r.kind),
    list.map((r) => r.name),
    list.map((r) => r.bucket),
    list.map((r) => r.assignedAt ?? null),
  ];
  if (plan.inserts.length > 0) await c.query(SQL.importInsert, columns(plan.inserts));
  if (plan.updates.length > 0) await c.query(SQL.importUpdate, columns(plan.updates.map((u) => u.row)));
  await writeAudit(c, audit, 'import', plan.audit);
  return plan.result;
}

/** `kinds`: every kind to repair (the caller read them before the transaction, to lock them). */
export async function repairTx(
  c: Client,
  audit: AuditContext,
  kind: string | undefined,
  kinds: readonly string[],
): Promise<CountFix[]> {
  await lockKinds(c, kind === undefined ? kinds : [kind]);
  const k = kind ?? null;
  const kept = (await c.query<{ kind: string; bucket: string; count: string }>(SQL.allCounts, [k])).rows;
  const real = (await c.query<{ kind: string; bucket: string; count: string }>(SQL.allRealCounts, [k])).rows;
  const fixes = countFixes(kept, real);
  // In (kind, bucket) order, as the triggers lock count rows.
  for (const f of fixes) await c.query(SQL.setCount, [f.kind, f.bucket, f.real]);
  await writeAudit(
    c,
    audit,
    'repair',
    fixes.map((f) => repairEntry(f, audit.reason)),
  );
  return fixes;
}
