/**
 * The admin primitives of the SQLite backend (explicit assignment, moves, deletes, imports,
 * count repairs): transaction bodies that SqliteStore runs inside `BEGIN IMMEDIATE`, with the
 * rules of store/rules.ts (the same as PostgreSQL's postgres/admin.ts). The write lock is
 * taken before the first read, so each body sees and changes the database alone; the count
 * triggers keep bucket_counts in step.
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
import type { Statements } from './schema.js';

/** What every body needs: the statements and the clock. */
export interface AdminContext {
  readonly stmts: Statements;
  readonly now: () => number;
}

function writeAudit(x: AdminContext, at: number, audit: AuditContext, action: AuditAction, e: AuditChange): void {
  x.stmts.audit.run(
    at,
    audit.actor,
    action,
    e.kind,
    e.name,
    e.from,
    e.to,
    e.reason !== undefined ? e.reason : (audit.reason ?? null),
    audit.batch ?? null,
  );
}

export function putTx(
  x: AdminContext,
  kind: string,
  name: string,
  bucket: string,
  audit: AuditContext,
  expect: string | null | undefined,
): PutResult {
  const from = x.stmts.lookup.get(kind, name)?.bucket ?? null;
  if (expect !== undefined && expect !== from) throw putConflict(kind, name, from, expect);
  if (from === bucket) return { from, to: bucket, changed: false };
  const now = x.now();
  if (from === null) x.stmts.insert.run(kind, name, bucket, now);
  else x.stmts.move.run(bucket, now, kind, name, from);
  writeAudit(x, now, audit, from === null ? 'assign' : 'move', { kind, name, from, to: bucket });
  return { from, to: bucket, changed: true };
}

export function deleteTx(
  x: AdminContext,
  kind: string,
  name: string,
  audit: AuditContext,
  expect: string | undefined,
): string | undefined {
  const from = x.stmts.lookup.get(kind, name)?.bucket;
  if (expect !== undefined && expect !== from) throw deleteConflict(kind, name, from, expect);
  if (from === undefined) return undefined;
  x.stmts.remove.run(kind, name, from);
  writeAudit(x, x.now(), audit, 'delete', { kind, name, from, to: null });
  return from;
}

/** Request by request: a name asked twice (a → b, then b → c) moves twice. */
export function moveBatchTx(
  x: AdminContext,
  kind: string,
  moves: readonly MoveRequest[],
  audit: AuditContext,
): MoveBatchResult {
  const now = x.now();
  const moved: string[] = [];
  const stale: string[] = [];
  for (const m of moves) {
    if (m.from !== m.to && x.stmts.move.run(m.to, now, kind, m.name, m.from).changes === 1) {
      writeAudit(x, now, audit, 'migrate', { kind, name: m.name, from: m.from, to: m.to });
      moved.push(m.name);
    } else stale.push(m.name);
  }
  return { moved, stale };
}

export function importTx(
  x: AdminContext,
  rows: readonly ImportRow[],
  overwrite: boolean,
  audit: AuditContext,
): ImportBatchResult {
  const now = x.now();
  const stored = new Map<string, string>();
  for (const o of importObjects(rows)) {
    const b = x.stmts.lookup.get(o.kind, o.name)?.bucket;
    if (b !== undefined) stored.set(objectKey(o.kind, o.name), b);
  }
  const plan = planImport(rows, stored, overwrite);
  for (const r of plan.inserts) x.stmts.insert.run(r.kind, r.name, r.bucket, r.assignedAt ?? now);
  for (const u of plan.updates) x.stmts.move.run(u.row.bucket, u.row.assignedAt ?? now, u.row.kind, u.row.name, u.from);
  for (const e of plan.audit) writeAudit(x, now, audit, 'import', e);
  return plan.result;
}

export function repairTx(x: AdminContext, audit: AuditContext, kind: string | undefined): CountFix[] {
  const fixes = countFixes(x.stmts.allCounts.all(), x.stmts.allRealCounts.all(), kind);
  const now = x.now();
  for (const f of fixes) {
    x.stmts.setCount.run(f.kind, f.bucket, f.real);
    writeAudit(x, now, audit, 'repair', repairEntry(f, audit.reason));
  }
  return fixes;
}
