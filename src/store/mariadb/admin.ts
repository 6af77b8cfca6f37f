/**
 * The admin primitives of the MariaDB backend (explicit assignment, moves, deletes, imports,
 * count repairs): transaction bodies run by MariadbStore's transaction(), with the rules of
 * store/rules.ts (as postgres/admin.ts and sqlite/admin.ts). Each first locks the rows of
 * the kinds it touches (lock order in schema.ts), so it never interleaves with a first
 * assignment of its kind.
 */
import {
  countFixes,
  deleteConflict,
  importObjects,
  objectKey,
  planImport,
  putConflict,
  repairEntry,
  type AuditChange,
  type CountRow,
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
import { NOW_MS, SQL } from './schema.js';

/** One statement on the transaction's connection: rows for a SELECT, the result header otherwise. */
export type Exec = <R = Record<string, unknown>>(
  sql: string,
  values?: unknown[],
) => Promise<R[] & { affectedRows?: number }>;

/** Most rows in one multi-row statement. */
const CHUNK = 1000;

function chunks<T>(list: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += CHUNK) out.push(list.slice(i, i + CHUNK));
  return out;
}

/** Locks the kinds' rows (creating them first: see MariadbStore.ensureKinds) and answers the server's clock. */
export async function lockKinds(q: Exec, kinds: Iterable<string>): Promise<number> {
  const list = [...new Set(kinds)].sort();
  if (list.length === 0) return Number((await q<{ now: number }>(`SELECT ${NOW_MS} AS now`))[0]!.now);
  const rows = await q<{ kind: string; now: number }>(SQL.lockKinds, [list]);
  if (rows.length < list.length)
    throw new Error(
      `kind rows missing for ${list.filter((k) => !rows.some((r) => r.kind === k)).join(', ')}: ensureKinds() ` +
        'must run first',
    );
  return Number(rows[0]!.now);
}

async function writeAudit(
  q: Exec,
  at: number,
  audit: AuditContext,
  action: AuditAction,
  entries: readonly AuditChange[],
): Promise<void> {
  for (const part of chunks(entries)) {
    await q(SQL.auditMany, [
      part.map((e) => [
        at,
        audit.actor,
        action,
        e.kind,
        e.name,
        e.from,
        e.to,
        e.reason !== undefined ? e.reason : (audit.reason ?? null),
        audit.batch ?? null,
      ]),
    ]);
  }
}

async function currentBucket(q: Exec, kind: string, name: string): Promise<string | null> {
  return (await q<{ bucket: string }>(SQL.bucketForUpdate, [kind, name]))[0]?.bucket ?? null;
}

export async function putTx(
  q: Exec,
  kind: string,
  name: string,
  bucket: string,
  audit: AuditContext,
  expect: string | null | undefined,
): Promise<PutResult> {
  const now = await lockKinds(q, [kind]);
  const from = await currentBucket(q, kind, name);
  if (expect !== undefined && expect !== from) throw putConflict(kind, name, from, expect);
  if (from === bucket) return { from, to: bucket, changed: false };
  if (from === null) await q(SQL.insertMany, [[[kind, name, bucket, now]]]);
  else await q(SQL.moveOne, [bucket, now, kind, name, from]);
  await writeAudit(q, now, audit, from === null ? 'assign' : 'move', [{ kind, name, from, to: bucket }]);
  return { from, to: bucket, changed: true };
}

export async function deleteTx(
  q: Exec,
  kind: string,
  name: string,
  audit: AuditContext,
  expect: string | undefined,
): Promise<string | undefined> {
  const now = await lockKinds(q, [kind]);
  const from = (await currentBucket(q, kind, name)) ?? undefined;
  if (expect !== undefined && expect !== from) throw deleteConflict(kind, name, from, expect);
  if (from === undefined) return undefined;
  await q(SQL.deleteOne, [kind, name, from]);
  await writeAudit(q, now, audit, 'delete', [{ kind, name, from, to: null }]);
  return from;
}

/** Request by request (a name asked twice moves twice), each a conditional UPDATE. */
export async function moveBatchTx(
  q: Exec,
  kind: string,
  moves: readonly MoveRequest[],
  audit: AuditContext,
): Promise<MoveBatchResult> {
  const now = await lockKinds(q, [kind]);
  const moved: string[] = [];
  const stale: string[] = [];
  const entries: AuditChange[] = [];
  for (const m of moves) {
    if (m.from !== m.to && (await q(SQL.moveOne, [m.to, now, kind, m.name, m.from])).affectedRows === 1) {
      moved.push(m.name);
      entries.push({ kind, name: m.name, from: m.from, to: m.to });
    } else stale.push(m.name);
  }
  await writeAudit(q, now, audit, 'migrate', entries);
  return { moved, stale };
}

/** Reads the stored buckets (row-locked), plans (store/rules.ts), writes inserts in bulk and overwrites row by row. */
export async function importTx(
  q: Exec,
  rows: readonly ImportRow[],
  overwrite: boolean,
  audit: AuditContext,
): Promise<ImportBatchResult> {
  const now = await lockKinds(
    q,
    rows.map((r) => r.kind),
  );
  const stored = new Map<string, string>();
  for (const part of chunks(importObjects(rows))) {
    for (const r of await q<{ kind: string; name: string; bucket: string }>(SQL.existingPairs, [
      part.map((o) => [o.kind, o.name]),
    ]))
      stored.set(objectKey(r.kind, r.name), r.bucket);
  }
  const plan = planImport(rows, stored, overwrite);
  for (const part of chunks(plan.inserts))
    await q(SQL.insertMany, [part.map((r) => [r.kind, r.name, r.bucket, r.assignedAt ?? now])]);
  for (const u of plan.updates)
    await q(SQL.moveOne, [u.row.bucket, u.row.assignedAt ?? now, u.row.kind, u.row.name, u.from]);
  await writeAudit(q, now, audit, 'import', plan.audit);
  return plan.result;
}

/** `kinds`: every kind to repair (read before the transaction, to lock them). */
export async function repairTx(
  q: Exec,
  audit: AuditContext,
  kind: string | undefined,
  kinds: readonly string[],
): Promise<CountFix[]> {
  const now = await lockKinds(q, kind === undefined ? kinds : [kind]);
  // Lock order 2 before 3: the feed row, then the count rows.
  await q(SQL.lockFeed);
  const k = kind ?? null;
  const fixes = countFixes(await q<CountRow>(SQL.allCounts, [k, k]), await q<CountRow>(SQL.allRealCounts, [k, k]));
  for (const f of fixes) await q(SQL.setCount, [f.kind, f.bucket, f.real]);
  await writeAudit(
    q,
    now,
    audit,
    'repair',
    fixes.map((f) => repairEntry(f, audit.reason)),
  );
  return fixes;
}
