/**
 * Migrating a bucket: moving all of its objects to one named bucket, or spreading them over
 * the kind's other active buckets by the policy (emptiest bin, as if they were new).
 *
 * Objects are taken in name order, `batchSize` at a time. Each batch is one store transaction
 * (moveBatch) in which every move is conditional on the object still being on the source
 * bucket and is audited with the batch's id: a batch either commits whole or not at all. An
 * interrupted migration is resumed by running it again: what is left on the bucket is what
 * remains to do. Between batches the event loop is yielded, so a server migrating through its
 * API keeps answering /auth.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { chooseBucket } from '../core/policy.js';
import { BadInputError, BucketActiveError, NoSuchBucketError, ShardError } from '../errors.js';
import type { BucketConfig } from '../config/types.js';
import {
  type OpsContext,
  type Who,
  checkReason,
  configuredBucket,
  configuredKind,
  hubClient,
  mapLimit,
} from './context.js';
import { ensureNoServer } from './hub-api.js';
import type { SafetyRequest } from './objects.js';

export const DEFAULT_BATCH_SIZE = 1000;
/**
 * Pause between batches. Each batch holds the store's write lock; a server assigning a new
 * user meanwhile waits for it (SQLite's busy handler retries every few to 100 ms), so the gap
 * must be long enough for such waiters to get in rather than starve until their timeout.
 */
export const DEFAULT_BATCH_PAUSE_MS = 20;
export const MAX_BATCH_SIZE = 10_000;
/** Longest pause between batches accepted. */
export const MAX_BATCH_PAUSE_MS = 60_000;
/** Users whose hubs are asked at the same time (per batch). */
export const HUB_CHECK_CONCURRENCY = 8;
/** Most skipped objects listed in a result (all are counted). */
export const MAX_LISTED_SKIPS = 1000;

export interface MigrateRequest extends Who, SafetyRequest {
  kind?: string | undefined;
  from: string;
  /** One bucket to move everything to; omitted: spread over the other active buckets. */
  to?: string | undefined;
  dryRun?: boolean | undefined;
  batchSize?: number | undefined;
  /** Milliseconds between batches (default DEFAULT_BATCH_PAUSE_MS). */
  pauseMs?: number | undefined;
  /** Called after each batch (a dry run's batches are its plan). */
  onBatch?: ((b: BatchReport) => void | Promise<void>) | undefined;
}

export interface Skip {
  name: string;
  reason: string;
}

export interface BatchReport {
  /** 1-based. */
  batch: number;
  /** Audit batch id, `<migration id>/<batch>`. */
  id: string;
  /** What this batch plans (dry run) or tried to do. */
  planned: { name: string; to: string }[];
  moved: number;
  skipped: Skip[];
}

export interface MigrateResult {
  id: string;
  kind: string;
  from: string;
  /** The named target, or null when spread by the policy. */
  to: string | null;
  dry_run: boolean;
  batches: number;
  /** Objects planned (dry run) or attempted. */
  planned: number;
  moved: number;
  /** Per target bucket: how many objects went (or, dry run, would go) there. */
  targets: Record<string, number>;
  skipped: Skip[];
  skipped_count: number;
  /** Objects still on the source bucket afterwards (0 when done; a dry run changes nothing). */
  remaining: number;
  servers_stopped: number;
  /** Things to know before running it for real (a dry run of an active bucket, say). */
  warnings: string[];
}

/** One more object for `bucket` (own keys only: a bucket may be called "constructor" or "toString"). */
function countTarget(targets: Record<string, number>, bucket: string): void {
  targets[bucket] = (Object.hasOwn(targets, bucket) ? targets[bucket]! : 0) + 1;
}

function targetsFor(kindBuckets: readonly BucketConfig[], from: string, to: BucketConfig | undefined): BucketConfig[] {
  if (to) return [to];
  return kindBuckets.filter((b) => b.name !== from && b.state === 'active');
}

export async function migrate(ctx: OpsContext, req: MigrateRequest): Promise<MigrateResult> {
  const k = configuredKind(ctx, req.kind);
  const reason = checkReason(req.reason);
  const batchSize = req.batchSize ?? DEFAULT_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH_SIZE)
    throw new BadInputError(`batch size must be a whole number from 1 to ${MAX_BATCH_SIZE}, got ${batchSize}`);
  const pauseMs = req.pauseMs ?? DEFAULT_BATCH_PAUSE_MS;
  if (!Number.isInteger(pauseMs) || pauseMs < 0 || pauseMs > MAX_BATCH_PAUSE_MS)
    throw new BadInputError(
      `the pause between batches must be 0 to ${MAX_BATCH_PAUSE_MS} milliseconds, got ${pauseMs}`,
    );
  const fromConfig = k.buckets.find((b) => b.name === req.from);
  if (req.to !== undefined && req.to === req.from)
    throw new BadInputError(
      `cannot migrate bucket "${req.from}" onto itself: name another bucket with --to, or omit it to spread ` +
        'over the other active buckets',
    );
  const to = req.to === undefined ? undefined : configuredBucket(k, req.to);
  if (!fromConfig) {
    // A bucket removed from the configuration is a normal source (that is how its objects get
    // routable again), but only if it holds objects: otherwise it is a typo.
    if (((await ctx.store.counts(k.name)).get(req.from) ?? 0) === 0)
      throw new NoSuchBucketError(
        k.name,
        req.from,
        k.buckets.map((b) => b.name),
      );
  }
  const activeMessage =
    `bucket "${req.from}" is active and would keep receiving new objects while it is emptied: set "state: ` +
    'draining" on it in sharder.yml and reload the running sharders (SIGHUP) first';
  if (fromConfig?.state === 'active' && !req.dryRun) throw new BucketActiveError(activeMessage);
  const targets = targetsFor(k.buckets, req.from, to);
  if (targets.length === 0)
    throw new BadInputError(
      `kind "${k.name}" has no other active bucket to spread the objects of "${req.from}" over: name one with --to`,
    );

  const id = `m-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const hub = req.skipHubCheck || req.dryRun ? undefined : hubClient(ctx, k.name, req.from);
  const result: MigrateResult = {
    id,
    kind: k.name,
    from: req.from,
    to: to?.name ?? null,
    dry_run: req.dryRun ?? false,
    batches: 0,
    planned: 0,
    moved: 0,
    targets: {},
    skipped: [],
    skipped_count: 0,
    remaining: 0,
    servers_stopped: 0,
    warnings: fromConfig?.state === 'active' ? [activeMessage] : [],
  };
  const skip = (s: Skip): void => {
    result.skipped_count++;
    if (result.skipped.length < MAX_LISTED_SKIPS) result.skipped.push(s);
  };
  ctx.log?.info(
    {
      event: 'migration_started',
      id,
      kind: k.name,
      from: req.from,
      to: to?.name ?? null,
      dry_run: result.dry_run,
      actor: req.actor,
    },
    `migrating ${req.from}`,
  );

  // A dry run writes nothing, so it simulates the counts its own plan would produce.
  let counts = await ctx.store.counts(k.name);
  let after: string | undefined;
  for (;;) {
    const page = await ctx.store.list(k.name, { bucket: req.from, after, limit: batchSize });
    if (page.length === 0) break;
    after = page.at(-1)!.name;
    if (!result.dry_run) counts = await ctx.store.counts(k.name);
    const planned = page.map((a) => {
      const target = to?.name ?? chooseBucket(targets, counts)!;
      counts.set(target, (counts.get(target) ?? 0) + 1);
      return { name: a.name, to: target };
    });
    const n = ++result.batches;
    const report: BatchReport = { batch: n, id: `${id}/${n}`, planned, moved: 0, skipped: [] };
    result.planned += planned.length;
    if (result.dry_run) {
      for (const p of planned) countTarget(result.targets, p.to);
    } else {
      let ready = planned;
      if (hub) {
        const checks = await mapLimit(planned, HUB_CHECK_CONCURRENCY, async (p) => {
          try {
            return await ensureNoServer(hub, p.name, {
              stopServers: req.stopServers ?? false,
              stopTimeoutMs: req.stopTimeoutMs,
              pollMs: ctx.hub?.stopPollMs,
            });
          } catch (err) {
            if (err instanceof ShardError) return { reason: err.message };
            throw err;
          }
        });
        ready = [];
        planned.forEach((p, i) => {
          const c = checks[i]!;
          if (typeof c === 'object') report.skipped.push({ name: p.name, reason: c.reason });
          else {
            if (c === 'stopped') result.servers_stopped++;
            ready.push(p);
          }
        });
      }
      if (ready.length > 0) {
        const r = await ctx.store.moveBatch(
          k.name,
          ready.map((p) => ({ name: p.name, from: req.from, to: p.to })),
          { actor: req.actor, reason: reason ?? `migrate ${req.from}`, batch: report.id },
        );
        const moved = new Set(r.moved);
        for (const p of ready) {
          if (moved.has(p.name)) countTarget(result.targets, p.to);
          else report.skipped.push({ name: p.name, reason: 'its assignment changed during the migration' });
        }
        report.moved = r.moved.length;
        result.moved += r.moved.length;
        for (const name of r.moved) ctx.changed?.(k.name, name);
      }
      for (const s of report.skipped) skip(s);
      ctx.log?.info(
        { event: 'migration_batch', id: report.id, moved: report.moved, skipped: report.skipped.length },
        `migration batch ${n}`,
      );
    }
    await req.onBatch?.(report);
    if (page.length < batchSize) break;
    // Also yields the event loop, so a server migrating through its API keeps answering.
    await sleep(result.dry_run ? 0 : pauseMs);
  }
  result.remaining = (await ctx.store.counts(k.name)).get(req.from) ?? 0;
  ctx.log?.info(
    {
      event: 'migration_finished',
      id,
      moved: result.moved,
      skipped: result.skipped_count,
      remaining: result.remaining,
    },
    `migration of ${req.from} finished`,
  );
  return result;
}
