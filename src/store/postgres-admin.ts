/**
 * The admin primitives of the PostgreSQL backend (explicit assignment, moves, deletes,
 * imports, count repairs): transaction bodies run by PostgresStore.transaction, with the same
 * semantics as SQLite's (see the Store interface in types.ts).
 *
 * Locks, in the order documented in postgres-schema.ts: each write first takes the kind lock
 * of every kind it touches, as first assignments do. So an admin write never interleaves with
 * a first assignment of its kind (which then sees the counts the write left, and cannot race
 * it into a unique violation), and the bucket_counts rows of a kind are only locked by the
 * holder of its kind lock: two admin writes, or an admin write and an assignment, can never
 * wait for each other's count rows in opposite orders. A transaction that may UPDATE or
 * DELETE after it INSERTed takes the change-feed lock before its first write, because the
 * UPDATE/DELETE triggers take that lock and an INSERT's trigger has already locked count rows.
 */
import type pg from 'pg';
import { ConflictError } from '../errors.js';
import { SQL } from './postgres-schema.js';
import type {
  AuditAction, AuditContext, CountFix, ImportBatchResult, ImportConflict, ImportRow, MoveBatchResult, MoveRequest, PutResult,
} from './types.js';

type Client = pg.PoolClient;

interface AuditRow {
  kind: string;
  name: string | null;
  from: string | null;
  to: string | null;
  /** Replaces the context's reason (count repairs say what they corrected). */
  reason?: string | null;
}

/** Writes audit entries (ids in the order of `rows`). */
async function writeAudit(c: Client, audit: AuditContext, action: AuditAction, rows: readonly AuditRow[]): Promise<void> {
  if (rows.length === 0) return;
  await c.query(SQL.auditMany, [
    audit.actor, action, audit.batch ?? null,
    rows.map((r) => r.kind), rows.map((r) => r.name), rows.map((r) => r.from), rows.map((r) => r.to),
    rows.map((r) => (r.reason !== undefined ? r.reason : audit.reason ?? null)),
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

export async function putTx(c: Client, kind: string, name: string, bucket: string, audit: AuditContext, expect: string | null | undefined): Promise<PutResult> {
  await lockKinds(c, [kind]);
  const from = await currentBucket(c, kind, name);
  if (expect !== undefined && expect !== from) {
    throw new ConflictError(`"${name}" of kind "${kind}" is ${from === null ? 'not assigned' : `on "${from}"`}, not ${expect === null ? 'unassigned' : `on "${expect}"`} as expected: it changed meanwhile; nothing was written`);
  }
  if (from === bucket) return { from, to: bucket, changed: false };
  if (from === null) await c.query(SQL.insertOne, [kind, name, bucket]);
  else await c.query(SQL.moveOne, [kind, name, from, bucket]);
  await writeAudit(c, audit, from === null ? 'assign' : 'move', [{ kind, name, from, to: bucket }]);
  return { from, to: bucket, changed: true };
}

export async function deleteTx(c: Client, kind: string, name: string, audit: AuditContext, expect: string | undefined): Promise<string | undefined> {
  await lockKinds(c, [kind]);
  const from = (await currentBucket(c, kind, name)) ?? undefined;
  if (expect !== undefined && expect !== from) {
    throw new ConflictError(`"${name}" of kind "${kind}" is ${from === undefined ? 'not assigned' : `on "${from}"`}, not on "${expect}" as expected: it changed meanwhile; nothing was deleted`);
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
export async function moveBatchTx(c: Client, kind: string, moves: readonly MoveRequest[], audit: AuditContext): Promise<MoveBatchResult> {
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
    const { rows } = await c.query<{ name: string }>(SQL.moveMany, [kind, these.map((m) => m.name), these.map((m) => m.from), these.map((m) => m.to)]);
    movedIn.push(new Set(rows.map((x) => x.name)));
  }
  const moved: string[] = [];
  const stale: string[] = [];
  const entries: AuditRow[] = [];
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
 * order as SQLite does, then writes all inserts in one statement and all overwrites in
 * another (each object's final state), and the audit entries in input order.
 */
export async function importTx(c: Client, rows: readonly ImportRow[], overwrite: boolean, audit: AuditContext): Promise<ImportBatchResult> {
  await lockKinds(c, rows.map((r) => r.kind));
  if (overwrite) await c.query(SQL.lockChanges);
  const key = (kind: string, name: string): string => `${kind}\0${name}`;
  const pairs = new Map<string, { kind: string; name: string }>();
  for (const r of rows) pairs.set(key(r.kind, r.name), r);
  const stored = new Map<string, string>();
  if (pairs.size > 0) {
    const found = await c.query<{ kind: string; name: string; bucket: string }>(SQL.existingPairs, [[...pairs.values()].map((p) => p.kind), [...pairs.values()].map((p) => p.name)]);
    for (const r of found.rows) stored.set(key(r.kind, r.name), r.bucket);
  }
  const current = new Map(stored);
  const writes = new Map<string, ImportRow>();
  const entries: AuditRow[] = [];
  const conflicts: ImportConflict[] = [];
  let inserted = 0;
  let unchanged = 0;
  let overwritten = 0;
  for (const r of rows) {
    const k = key(r.kind, r.name);
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
    entries.push({ kind: r.kind, name: r.name, from: existing ?? null, to: r.bucket });
  }
  const ins: ImportRow[] = [];
  const upd: ImportRow[] = [];
  for (const [k, r] of writes) (stored.has(k) ? upd : ins).push(r);
  const columns = (list: ImportRow[]): unknown[] => [list.map((r) => r.kind), list.map((r) => r.name), list.map((r) => r.bucket), list.map((r) => r.assignedAt ?? null)];
  if (ins.length > 0) await c.query(SQL.importInsert, columns(ins));
  if (upd.length > 0) await c.query(SQL.importUpdate, columns(upd));
  await writeAudit(c, audit, 'import', entries);
  return { inserted, unchanged, overwritten, conflicts };
}

/** `kinds`: every kind to repair (the caller read them before the transaction, to lock them). */
export async function repairTx(c: Client, audit: AuditContext, kind: string | undefined, kinds: readonly string[]): Promise<CountFix[]> {
  await lockKinds(c, kind === undefined ? kinds : [kind]);
  const k = kind ?? null;
  const key = (kd: string, b: string): string => `${kd}\0${b}`;
  const kept = new Map<string, { kind: string; bucket: string; count: number }>();
  for (const r of (await c.query<{ kind: string; bucket: string; count: string }>(SQL.allCounts, [k])).rows) kept.set(key(r.kind, r.bucket), { ...r, count: Number(r.count) });
  const real = new Map<string, { kind: string; bucket: string; count: number }>();
  for (const r of (await c.query<{ kind: string; bucket: string; count: string }>(SQL.allRealCounts, [k])).rows) real.set(key(r.kind, r.bucket), { ...r, count: Number(r.count) });
  const fixes: CountFix[] = [];
  for (const kk of new Set([...kept.keys(), ...real.keys()])) {
    const row = (real.get(kk) ?? kept.get(kk))!;
    const was = kept.get(kk)?.count ?? 0;
    const is = real.get(kk)?.count ?? 0;
    if (was === is) continue;
    fixes.push({ kind: row.kind, bucket: row.bucket, kept: was, real: is });
  }
  fixes.sort((a, b) => (a.kind === b.kind ? (a.bucket < b.bucket ? -1 : 1) : a.kind < b.kind ? -1 : 1));
  // In (kind, bucket) order, as the triggers lock count rows.
  for (const f of fixes) await c.query(SQL.setCount, [f.kind, f.bucket, f.real]);
  await writeAudit(c, audit, 'repair', fixes.map((f) => ({
    kind: f.kind, name: null, from: null, to: f.bucket,
    reason: `count of "${f.bucket}" was ${f.kept}, real ${f.real}${audit.reason ? `: ${audit.reason}` : ''}`,
  })));
  return fixes;
}
