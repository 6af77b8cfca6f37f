/**
 * `doctor`: checks the store's invariants against itself and against the configuration, and
 * repairs the kept counts on request. Errors are states the sharder must not be in (counts
 * that mislead the policy, objects that cannot be routed); warnings are states an operator
 * should know about but may intend.
 */
import type { CountFix } from '../store/types.js';
import { type OpsContext, type Who, checkReason, knownKind } from './context.js';

export type CheckStatus = 'ok' | 'warning' | 'error';

export interface DoctorCheck {
  /** Stable identifier for scripts. */
  check: 'one_row_per_object' | 'counts' | 'kinds_in_config' | 'buckets_in_config' | 'upstreams' | 'active_buckets';
  status: CheckStatus;
  message: string;
  details: unknown[];
}

export interface DoctorReport {
  ok: boolean;
  errors: number;
  warnings: number;
  checks: DoctorCheck[];
}

const DUPLICATES_SHOWN = 100;

export async function doctor(ctx: OpsContext, kind?: string): Promise<DoctorReport> {
  const config = ctx.config();
  const only = kind === undefined ? undefined : await knownKind(ctx, kind);
  const stored = await ctx.store.kinds();
  const kinds = only !== undefined ? [only] : [...new Set([...config.kinds.keys(), ...stored])].sort();
  const checks: DoctorCheck[] = [];
  const check = (
    c: DoctorCheck['check'],
    bad: unknown[],
    severity: CheckStatus,
    okMessage: string,
    badMessage: string,
  ): void => {
    checks.push({
      check: c,
      status: bad.length === 0 ? 'ok' : severity,
      message: bad.length === 0 ? okMessage : badMessage,
      details: bad,
    });
  };

  const dups = (await ctx.store.duplicates(DUPLICATES_SHOWN)).filter((d) => only === undefined || d.kind === only);
  check(
    'one_row_per_object',
    dups,
    'error',
    'every object has exactly one assignment',
    `${dups.length}${dups.length === DUPLICATES_SHOWN ? '+' : ''} object(s) are stored more than once: the ` +
      `schema's uniqueness constraint is broken; restore from an export`,
  );

  const drift: CountFix[] = [];
  const realByKind = new Map<string, Map<string, number>>();
  for (const k of kinds) {
    const [kept, real] = await Promise.all([ctx.store.counts(k), ctx.store.realCounts(k)]);
    realByKind.set(k, real);
    for (const b of new Set([...kept.keys(), ...real.keys()])) {
      const a = kept.get(b) ?? 0;
      const r = real.get(b) ?? 0;
      if (a !== r) drift.push({ kind: k, bucket: b, kept: a, real: r });
    }
  }
  check(
    'counts',
    drift,
    'error',
    'the counts the policy uses equal the real numbers of assignments',
    `${drift.length} bucket count(s) differ from the real number of assignments: run doctor --repair`,
  );

  if (only === undefined) {
    const unknownKinds = stored
      .filter((k) => !config.kinds.has(k))
      .map((k) => ({ kind: k, objects: [...(realByKind.get(k)?.values() ?? [])].reduce((a, b) => a + b, 0) }));
    check(
      'kinds_in_config',
      unknownKinds,
      'error',
      'every stored kind is configured',
      `objects of ${unknownKinds.length} kind(s) that the configuration no longer lists: put the kind back, or ` +
        'export and delete its objects',
    );
  }

  const orphans: { kind: string; bucket: string; objects: number }[] = [];
  const noUpstream: { kind: string; bucket: string }[] = [];
  const noActive: { kind: string }[] = [];
  for (const k of kinds) {
    const kc = config.kinds.get(k);
    if (!kc) continue;
    for (const [b, n] of realByKind.get(k) ?? [])
      if (n > 0 && !kc.buckets.some((x) => x.name === b)) orphans.push({ kind: k, bucket: b, objects: n });
    for (const b of kc.buckets) if (b.upstream === null) noUpstream.push({ kind: k, bucket: b.name });
    if (!kc.buckets.some((b) => b.state === 'active')) noActive.push({ kind: k });
  }
  check(
    'buckets_in_config',
    orphans,
    'error',
    'every object is in a configured bucket',
    `objects in ${orphans.length} bucket(s) that the configuration no longer lists (they get 503): put each ` +
      'bucket back as draining, then migrate its objects',
  );
  check(
    'upstreams',
    noUpstream,
    'warning',
    'every configured bucket has an upstream',
    `${noUpstream.length} bucket(s) have no upstream: /auth sends no X-Shard-Upstream for their users`,
  );
  check(
    'active_buckets',
    noActive,
    'warning',
    'every kind has an active bucket',
    `${noActive.length} kind(s) have no active bucket: new objects of them get 503`,
  );

  const errors = checks.filter((c) => c.status === 'error').length;
  const warnings = checks.filter((c) => c.status === 'warning').length;
  return { ok: errors === 0, errors, warnings, checks };
}

/** Sets the kept counts to the real ones (audited), then checks again. */
export async function repair(
  ctx: OpsContext,
  who: Who,
  kind?: string,
): Promise<{ repaired: CountFix[]; report: DoctorReport }> {
  const only = kind === undefined ? undefined : await knownKind(ctx, kind);
  const repaired = await ctx.store.repairCounts({ actor: who.actor, reason: checkReason(who.reason) }, only);
  if (repaired.length > 0)
    ctx.log?.warn({ event: 'counts_repaired', repaired, actor: who.actor }, 'bucket counts repaired');
  return { repaired, report: await doctor(ctx, only) };
}
