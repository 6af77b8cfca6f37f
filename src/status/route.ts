/**
 * GET /status on the control listener: the status page (page.ts) for people.
 *
 * Who may see it is the gate's `status` access (http/gate.ts). The page shows bucket counts, configuration and the
 * audit log's recent entries: what an admin may see, nothing secret (no tokens, no database
 * URL; the store location is the one logged at start-up).
 */
import type { Config } from '../config/types.js';
import { ClusterGatherError } from '../errors.js';
import type { ControlRouter } from '../http/control.js';
import type { Logger } from '../log.js';
import type { RecentView } from '../metrics/assignments.js';
import type { Operations } from '../ops/index.js';
import type { Store } from '../store/types.js';
import { type AuditLine, type KindStatus, type StatusView, renderStatus, targetShares } from './page.js';

/** Audit entries shown. */
export const STATUS_AUDIT_ENTRIES = 15;

export interface StatusDeps {
  config(): Config;
  ops(): Operations;
  store(): Store;
  /** New assignments in the last hour: this process's, or the whole cluster's. */
  recent(): Promise<RecentView>;
  readonly version: string;
  readonly startedAt: number;
  readonly workers: number;
  readonly log: Logger;
  now?(): number;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
      timer.unref();
    }),
  ]).finally(() => clearTimeout(timer));
}

export async function statusView(deps: StatusDeps, refreshSeconds: number): Promise<StatusView> {
  const config = deps.config();
  const now = (deps.now ?? Date.now)();
  const store = deps.store();
  const ops = deps.ops();
  const timeout = config.store.timeoutMs;
  const [bucketViews, audit, recent] = await Promise.allSettled([
    withTimeout(Promise.all([...config.kinds.keys()].map((k) => ops.buckets(k))), timeout, 'the store'),
    withTimeout(ops.audit({ limit: STATUS_AUDIT_ENTRIES }), timeout, 'the store'),
    deps.recent(),
  ]);
  const recentView: RecentView = recent.status === 'fulfilled' ? recent.value : { since: now, counts: {} };
  if (recent.status === 'rejected')
    deps.log.warn(
      { event: 'status_recent_failed', err: String(recent.reason) },
      'new assignments could not be gathered',
    );
  let kinds: KindStatus[] | null = null;
  if (bucketViews.status === 'fulfilled') {
    kinds = bucketViews.value.map((v) => {
      const rows = v.buckets.map((b) => ({ ...b, state: b.in_config ? b.state : 'unknown' }));
      const targets = targetShares(rows);
      // Own keys only: the view came over IPC as JSON, and a kind or bucket may be called "constructor".
      const fresh = Object.hasOwn(recentView.counts, v.kind) ? recentView.counts[v.kind]! : {};
      const buckets = rows.map((b, i) => ({
        name: b.name,
        state: b.state as 'active' | 'draining' | 'unknown',
        weight: b.weight,
        count: b.count,
        share: b.share,
        target: targets[i]!,
        recent: Object.hasOwn(fresh, b.name) ? fresh[b.name]! : 0,
      }));
      return { name: v.kind, total: v.total, recent: buckets.reduce((a, b) => a + b.recent, 0), buckets };
    });
  }
  const storeError =
    bucketViews.status === 'rejected' ? String((bucketViews.reason as Error).message ?? bucketViews.reason) : null;
  return {
    generatedAt: now,
    version: deps.version,
    mode: config.mode,
    store: { backend: store.backend, location: store.location, up: storeError === null, error: storeError },
    uptimeSeconds: (now - deps.startedAt) / 1000,
    workers: deps.workers,
    refreshSeconds,
    recentSince: recentView.since,
    kinds,
    audit:
      audit.status === 'fulfilled'
        ? audit.value.items.map((e): AuditLine => ({
            at: e.at,
            actor: e.actor,
            action: e.action,
            kind: e.kind,
            name: e.name,
            from: e.from,
            to: e.to,
            reason: e.reason,
          }))
        : null,
  };
}

export function registerStatusRoute(router: ControlRouter, deps: StatusDeps): void {
  router.add(
    'GET',
    '/status',
    async ({ res, query }) => {
      let refresh = deps.config().status.refreshSeconds;
      const r = query.get('refresh');
      if (r !== null && /^\d{1,4}$/.test(r) && Number(r) <= 3600) refresh = Number(r);
      let view: StatusView;
      try {
        view = await statusView(deps, refresh);
      } catch (err) {
        throw new ClusterGatherError(`the status could not be put together: ${(err as Error).message}`, { cause: err });
      }
      const html = renderStatus(view);
      res.writeHead(200, [
        'Content-Type',
        'text/html; charset=utf-8',
        'Content-Length',
        String(Buffer.byteLength(html)),
        'Cache-Control',
        'no-store',
        // No script at all; styles are inline (the bars' widths are style attributes).
        'Content-Security-Policy',
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        'X-Content-Type-Options',
        'nosniff',
        'Referrer-Policy',
        'no-referrer',
      ]);
      res.end(html);
    },
    { access: 'status' },
  );
}
