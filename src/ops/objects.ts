/**
 * Operations on single objects and on listings: look up, list, buckets, explicit assignment,
 * move, delete, audit log. Moves and deletes ask the old hub (when it has a hub_api) whether
 * the user has a running server first.
 */
import { BadInputError, ConflictError, NotFoundError } from '../errors.js';
import { AUDIT_ACTIONS, type Assignment, type AuditAction, type AuditEntry } from '../store/types.js';
import {
  type OpsContext,
  type Who,
  checkLimit,
  checkObjectName,
  checkReason,
  configuredBucket,
  configuredKind,
  decodeCursor,
  encodeCursor,
  hubClient,
  knownKind,
} from './context.js';
import { isoTime } from './format.js';
import { ensureNoServer } from './hub-api.js';

export const LIST_DEFAULT_LIMIT = 100;
export const LIST_MAX_LIMIT = 10_000;
export const AUDIT_DEFAULT_LIMIT = 50;
export const AUDIT_MAX_LIMIT = 1_000;

export interface ObjectView {
  kind: string;
  name: string;
  bucket: string;
  /** ISO 8601: when the object was put on its current bucket. */
  assigned_at: string;
  /** False when the bucket is no longer in the configuration (the object cannot be routed). */
  in_config: boolean;
}

function view(ctx: OpsContext, a: Assignment): ObjectView {
  const kind = ctx.config().kinds.get(a.kind);
  return {
    kind: a.kind,
    name: a.name,
    bucket: a.bucket,
    assigned_at: isoTime(a.assignedAt),
    in_config: kind?.buckets.some((b) => b.name === a.bucket) ?? false,
  };
}

export async function findObject(ctx: OpsContext, kind: string | undefined, name: string): Promise<ObjectView> {
  const k = await knownKind(ctx, kind);
  const n = checkObjectName(ctx, name);
  const a = await ctx.store.get(k, n);
  if (!a) throw new NotFoundError(`"${n}" of kind "${k}" has no assignment`);
  return view(ctx, a);
}

export interface ListQuery {
  kind?: string | undefined;
  bucket?: string | undefined;
  cursor?: string | undefined;
  limit?: number | undefined;
}

export interface ObjectPage {
  kind: string;
  bucket: string | null;
  items: ObjectView[];
  /** Pass as `cursor` for the next page; null on the last page. */
  next_cursor: string | null;
}

export async function listObjects(ctx: OpsContext, q: ListQuery): Promise<ObjectPage> {
  const kind = await knownKind(ctx, q.kind);
  const limit = checkLimit(q.limit, LIST_DEFAULT_LIMIT, LIST_MAX_LIMIT);
  let after: string | undefined;
  if (q.cursor !== undefined) {
    const c = decodeCursor(q.cursor);
    if (c.t !== 'objects' || c.k !== kind || (c.b ?? null) !== (q.bucket ?? null) || typeof c.a !== 'string') {
      throw new BadInputError(
        'the cursor belongs to another listing: pass the same kind and bucket as the query that returned it',
      );
    }
    after = c.a;
  }
  // One row more than asked tells whether there is a next page.
  const rows = await ctx.store.list(kind, { bucket: q.bucket, after, limit: limit + 1 });
  const items = rows.slice(0, limit).map((a) => view(ctx, a));
  const next =
    rows.length > limit ? encodeCursor({ t: 'objects', k: kind, b: q.bucket ?? null, a: items.at(-1)!.name }) : null;
  return { kind, bucket: q.bucket ?? null, items, next_cursor: next };
}

/** Every object of a kind (or of one bucket), page by page, in bounded memory. */
export async function* iterateObjects(
  ctx: OpsContext,
  q: { kind?: string | undefined; bucket?: string | undefined },
): AsyncGenerator<ObjectView> {
  const kind = await knownKind(ctx, q.kind);
  let after: string | undefined;
  for (;;) {
    const rows = await ctx.store.list(kind, { bucket: q.bucket, after, limit: 1000 });
    for (const a of rows) yield view(ctx, a);
    if (rows.length < 1000) return;
    after = rows.at(-1)!.name;
  }
}

export interface BucketView {
  name: string;
  /** `unknown` for a bucket that holds objects but is not in the configuration. */
  state: string;
  weight: number;
  upstream: string | null;
  /** Whether moves off this bucket ask its JupyterHub for running servers. */
  hub_api: boolean;
  count: number;
  /** count / total, 0 to 1. */
  share: number;
  in_config: boolean;
}

export interface BucketsView {
  kind: string;
  total: number;
  buckets: BucketView[];
}

export async function listBuckets(ctx: OpsContext, kind: string | undefined): Promise<BucketsView> {
  const k = configuredKind(ctx, kind);
  const counts = await ctx.store.counts(k.name);
  const total = [...counts.values()].reduce((a, b) => a + b, 0);
  const rows: Omit<BucketView, 'share'>[] = k.buckets.map((b) => ({
    name: b.name,
    state: b.state,
    weight: b.weight,
    upstream: b.upstream,
    hub_api: b.hubApi !== undefined,
    count: counts.get(b.name) ?? 0,
    in_config: true,
  }));
  for (const [name, count] of counts) {
    if (!k.buckets.some((b) => b.name === name))
      rows.push({ name, state: 'unknown', weight: 0, upstream: null, hub_api: false, count, in_config: false });
  }
  return { kind: k.name, total, buckets: rows.map((r) => ({ ...r, share: total === 0 ? 0 : r.count / total })) };
}

export interface ChangeView {
  kind: string;
  name: string;
  /** Null when the object had no assignment. */
  from: string | null;
  /** Null after a delete. */
  to: string | null;
  /** False when nothing had to change (already there). */
  changed: boolean;
  /** True when the old hub's servers were stopped first (--stop-servers). */
  servers_stopped: boolean;
}

export interface SafetyRequest {
  /** Stop the user's servers on the old hub (and wait) instead of refusing. */
  stopServers?: boolean | undefined;
  /** Do not ask the old hub at all (its API is down for good, say). */
  skipHubCheck?: boolean | undefined;
  stopTimeoutMs?: number | undefined;
}

/** Asks the bucket's hub (if it has a hub_api) that the user runs nothing there. */
export async function checkNoServer(
  ctx: OpsContext,
  kind: string,
  name: string,
  bucket: string,
  s: SafetyRequest,
): Promise<boolean> {
  if (s.skipHubCheck) return false;
  const client = hubClient(ctx, kind, bucket);
  if (!client) return false;
  const r = await ensureNoServer(client, name, {
    stopServers: s.stopServers ?? false,
    stopTimeoutMs: s.stopTimeoutMs,
    pollMs: ctx.hub?.stopPollMs,
  });
  return r === 'stopped';
}

/** Assigns an object that has no bucket yet to a named one (instead of by the policy). */
export async function assignObject(
  ctx: OpsContext,
  req: { kind?: string | undefined; name: string; bucket: string } & Who,
): Promise<ChangeView> {
  const k = configuredKind(ctx, req.kind);
  const name = checkObjectName(ctx, req.name);
  configuredBucket(k, req.bucket);
  const reason = checkReason(req.reason);
  const current = await ctx.store.lookup(k.name, name);
  if (current === req.bucket)
    return { kind: k.name, name, from: current, to: current, changed: false, servers_stopped: false };
  if (current !== undefined)
    throw new ConflictError(`"${name}" is already on "${current}": use move to change its bucket`);
  await ctx.store.put(k.name, name, req.bucket, { actor: req.actor, reason }, { expect: null });
  ctx.changed?.(k.name, name);
  ctx.log?.info({ event: 'admin_assign', kind: k.name, name, to: req.bucket, actor: req.actor }, 'assigned explicitly');
  return { kind: k.name, name, from: null, to: req.bucket, changed: true, servers_stopped: false };
}

/** Where an assignment by the policy put the object, and whether it was new. */
export interface AssignedView {
  kind: string;
  name: string;
  bucket: string;
  created: boolean;
}

/**
 * Assigns by the policy, exactly as a first request would (not audited: it is not an
 * operator's choice); an object that has a bucket keeps it.
 */
export async function assignByPolicy(
  ctx: OpsContext,
  req: { kind?: string | undefined; name: string },
): Promise<AssignedView> {
  const k = configuredKind(ctx, req.kind);
  const name = checkObjectName(ctx, req.name);
  const r = await ctx.store.assign(k.name, name, k.buckets);
  return { kind: k.name, name, bucket: r.bucket, created: r.created };
}

export interface PutView extends ChangeView {
  /** What was done: `move`, `assign` (it had no bucket) or `none` (it was there already). */
  action: 'move' | 'assign' | 'none';
}

/** Puts the object on a bucket: moves it when it has one, assigns it explicitly when not. */
export async function putObject(
  ctx: OpsContext,
  req: { kind?: string | undefined; name: string; bucket: string } & Who & SafetyRequest,
): Promise<PutView> {
  try {
    const r = await moveObject(ctx, { ...req, to: req.bucket });
    return { ...r, action: r.changed ? 'move' : 'none' };
  } catch (err) {
    if (!(err instanceof NotFoundError)) throw err;
    const r = await assignObject(ctx, req);
    return { ...r, action: r.changed ? 'assign' : 'none' };
  }
}

export async function moveObject(
  ctx: OpsContext,
  req: { kind?: string | undefined; name: string; to: string } & Who & SafetyRequest,
): Promise<ChangeView> {
  const k = configuredKind(ctx, req.kind);
  const name = checkObjectName(ctx, req.name);
  configuredBucket(k, req.to);
  const reason = checkReason(req.reason);
  const from = await ctx.store.lookup(k.name, name);
  if (from === undefined)
    throw new NotFoundError(
      `"${name}" of kind "${k.name}" has no assignment: nothing to move (assign it with: sharder assign NAME ` +
        '--to BUCKET)',
    );
  if (from === req.to) return { kind: k.name, name, from, to: from, changed: false, servers_stopped: false };
  const stopped = await checkNoServer(ctx, k.name, name, from, req);
  // expect: if someone moved or deleted it while the hub was asked, nothing is written.
  await ctx.store.put(k.name, name, req.to, { actor: req.actor, reason }, { expect: from });
  ctx.changed?.(k.name, name);
  ctx.log?.info(
    { event: 'admin_move', kind: k.name, name, from, to: req.to, actor: req.actor, servers_stopped: stopped },
    'moved',
  );
  return { kind: k.name, name, from, to: req.to, changed: true, servers_stopped: stopped };
}

/**
 * Deletes an assignment; the object's next request assigns it afresh, possibly to another
 * hub, so the old hub is asked first exactly as for a move.
 */
export async function deleteObject(
  ctx: OpsContext,
  req: { kind?: string | undefined; name: string } & Who & SafetyRequest,
): Promise<ChangeView> {
  const kind = await knownKind(ctx, req.kind);
  const name = checkObjectName(ctx, req.name);
  const reason = checkReason(req.reason);
  const from = await ctx.store.lookup(kind, name);
  if (from === undefined) throw new NotFoundError(`"${name}" of kind "${kind}" has no assignment: nothing to delete`);
  const stopped = await checkNoServer(ctx, kind, name, from, req);
  await ctx.store.delete(kind, name, { actor: req.actor, reason }, { expect: from });
  ctx.changed?.(kind, name);
  ctx.log?.info({ event: 'admin_delete', kind, name, from, actor: req.actor }, 'deleted');
  return { kind, name, from, to: null, changed: true, servers_stopped: stopped };
}

export interface AuditRequest {
  kind?: string | undefined;
  name?: string | undefined;
  action?: string | undefined;
  batch?: string | undefined;
  /** ISO 8601 time or unix ms. */
  since?: string | number | undefined;
  cursor?: string | undefined;
  limit?: number | undefined;
}

export interface AuditView {
  id: number;
  at: string;
  actor: string;
  action: AuditAction;
  kind: string;
  name: string | null;
  from: string | null;
  to: string | null;
  reason: string | null;
  batch: string | null;
}

export const auditView = (e: AuditEntry): AuditView => ({ ...e, at: isoTime(e.at) });

export async function listAudit(
  ctx: OpsContext,
  q: AuditRequest,
): Promise<{ items: AuditView[]; next_cursor: string | null }> {
  const limit = checkLimit(q.limit, AUDIT_DEFAULT_LIMIT, AUDIT_MAX_LIMIT);
  if (q.action !== undefined && !AUDIT_ACTIONS.includes(q.action as AuditAction)) {
    throw new BadInputError(`unknown action "${q.action}" (known: ${AUDIT_ACTIONS.join(', ')})`);
  }
  let since: number | undefined;
  if (q.since !== undefined) {
    since = typeof q.since === 'number' ? q.since : /^\d+$/.test(q.since) ? Number(q.since) : Date.parse(q.since);
    if (!Number.isFinite(since))
      throw new BadInputError(
        `since must be an ISO 8601 time (e.g. 2024-05-01 or 2024-05-01T12:00:00Z), got ${JSON.stringify(q.since)}`,
      );
  }
  let before: number | undefined;
  if (q.cursor !== undefined) {
    const c = decodeCursor(q.cursor);
    if (c.t !== 'audit' || typeof c.i !== 'number')
      throw new BadInputError('the cursor does not belong to the audit log');
    before = c.i;
  }
  const rows = await ctx.store.audit({
    kind: q.kind,
    name: q.name,
    action: q.action as AuditAction | undefined,
    batch: q.batch,
    since,
    before,
    limit: limit + 1,
  });
  const items = rows.slice(0, limit).map(auditView);
  return { items, next_cursor: rows.length > limit ? encodeCursor({ t: 'audit', i: items.at(-1)!.id }) : null };
}
