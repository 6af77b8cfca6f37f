/**
 * The composition root: configuration → object graph, in one plain function. Nothing here
 * has an effect outside the objects it makes: no timer, no listening socket, no watcher, no
 * process-wide handler, no global read (whether this process is a cluster worker, and when it
 * started, are passed in). Sharder (sharder.ts) starts, reloads and stops what this builds.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Config } from '../config/types.js';
import { Assigner } from '../core/assigner.js';
import { applyKinds, type KindRuntime } from '../core/buckets.js';
import { AssignmentTable } from '../core/table.js';
import { ClusterGatherError } from '../errors.js';
import { registerAdminApi } from '../http/api.js';
import { Answers } from '../http/answers.js';
import { ControlRouter, createControlServer } from '../http/control.js';
import { identitySettings } from '../http/identity.js';
import { createMainServer, peerTrusted, type MainContext, type MainSettings } from '../http/main.js';
import { AUTH_FAILURES_ALLOWED, FailureLimiter } from '../http/rate-limit.js';
import type { Logger } from '../log.js';
import { AssignmentCounter } from '../metrics/assignments.js';
import { gatherFromPrimary } from '../metrics/gather.js';
import { NO_METER, RecordingMeter } from '../metrics/http.js';
import { SharderMetrics } from '../metrics/registry.js';
import { registerMetricsRoute } from '../metrics/route.js';
import { instrumentStore } from '../metrics/store.js';
import { Operations } from '../ops/index.js';
import { ProxyMode } from '../proxy/index.js';
import { registerStatusRoute } from '../status/route.js';
import type { Snapshot } from '../store/snapshot.js';
import type { Store } from '../store/types.js';
import { VERSION } from '../version.js';

export interface ComposeOptions {
  readonly log: Logger;
  /** The store, open (or waiting for the database: store/pending.ts). */
  readonly store: Store;
  /** The local copy of the table (store.snapshot_file), or undefined. */
  readonly snapshot: Snapshot | undefined;
  /** This process is a worker of `workers: N` (node:cluster's isWorker, read by the caller). */
  readonly isWorker: boolean;
  /** When the process started serving (unix ms), for the status page. */
  readonly startedAt: number;
}

/** Everything a running sharder is made of. */
export interface Graph {
  /** The configuration in force: reload replaces it, and every part reads it from here. */
  config: Config;
  readonly log: Logger;
  readonly isWorker: boolean;
  /** The core's bucket set: the configured kinds, their buckets and caches. */
  readonly kinds: Map<string, KindRuntime>;
  /** Each bucket's precomputed HTTP answer. */
  readonly answers: Answers;
  /** The main listener's handlers' context (its settings are swapped on reload). */
  readonly main: MainContext;
  /** The store, timed and counted when metrics are on (metrics/store.ts). */
  readonly store: Store;
  readonly snapshot: Snapshot | undefined;
  /** Every kind's whole assignment table, kept in memory from the change feed (core/table.ts). */
  readonly table: AssignmentTable;
  /** Prometheus metrics; null when metrics.enabled is false. */
  readonly metrics: SharderMetrics | null;
  /** First assignments made here: sharder_assignments_total and the status page's last hour. */
  readonly assignments: AssignmentCounter;
  /** Proxy mode's forwarding and its counters; undefined in auth mode. */
  readonly proxy: ProxyMode | undefined;
  /** The main listener (proxy mode's when proxying). */
  readonly server: Server;
  /**
   * Admin operations on this server's store. Changes made through them are on this process's
   * own connection, which its change watcher does not report: they drop cache entries here.
   */
  readonly ops: Operations;
  /** Routes of the control listener: the admin API, /metrics, /status. */
  readonly router: ControlRouter;
  /** The control listener, or null when control_listen is off. */
  readonly control: Server | null;
  /**
   * metrics.listen: a listener of its own with only /metrics (as configurable-http-proxy's
   * --metrics-port), so that Prometheus can reach it where the admin API must not be; null
   * when off. The same control server as the admin API's, with a router that has one route.
   */
  readonly metricsListener: Server | null;
}

/**
 * Applies a configuration to the bucket set and the answers, and returns the main handlers'
 * settings for it: at composition, and on every reload.
 */
export function applySettings(g: Pick<Graph, 'kinds' | 'answers'>, config: Config): MainSettings {
  applyKinds(g.kinds, config.kinds, config.cache.maxEntries);
  g.answers.apply(g.kinds, config.cookie);
  return {
    identity: identitySettings(
      config.identity.header,
      config.identity.trustedProxies,
      config.identity.maxLength,
      config.kindHeader,
    ),
    defaultKind: g.kinds.get(config.defaultKind)!,
    kinds: g.kinds,
    redirect: config.shard.redirect,
  };
}

export function compose(config: Config, o: ComposeOptions): Graph {
  const { log, isWorker } = o;
  const kinds = new Map<string, KindRuntime>();
  const answers = new Answers();
  const assignments = new AssignmentCounter();
  const meter = config.metrics.enabled ? new RecordingMeter() : NO_METER;
  // The parts read the configuration in force through this, so that a reload reaches them.
  const current = (): Config => g.config;
  const metrics: SharderMetrics | null =
    meter instanceof RecordingMeter
      ? new SharderMetrics({
          version: VERSION,
          meter,
          assignments,
          config: current,
          kinds: () => kinds.values(),
          store: (): Store => store,
          clustered: isWorker,
        })
      : null;
  const store: Store = metrics === null ? o.store : instrumentStore(o.store, metrics);
  const assigner = new Assigner(store, log, () => current().store.timeoutMs, {
    assigned: (kind, bucket, name) => {
      assignments.record(kind, bucket);
      table.assigned(kind, name, bucket);
    },
    timedOut: (kind) => metrics?.timedOut(kind),
  });
  const main: MainContext = {
    settings: applySettings({ kinds, answers }, config),
    assigner,
    answers,
    log,
    meter,
    ready: () => store.ping(),
  };
  const proxy = config.mode === 'proxy' ? new ProxyMode(main, config.proxy) : undefined;
  if (proxy !== undefined) metrics?.addProxy(proxy.stats);
  const table = new AssignmentTable({ store, kinds: () => kinds, assigner, log, snapshot: o.snapshot });
  const ops = new Operations({ store, config: current, changed: (kind, name) => table.changed(kind, name), log });

  const router = new ControlRouter();
  registerAdminApi(router, () => ops);
  const metricsRouter = new ControlRouter();
  // With workers: N, /metrics and /status are gathered over every worker through the cluster
  // primary (metrics/gather.ts).
  const gathered = async <T>(p: Promise<T>): Promise<T> => {
    try {
      return await p;
    } catch (err) {
      throw new ClusterGatherError(`the workers' numbers could not be gathered: ${(err as Error).message}`, {
        cause: err,
      });
    }
  };
  const metricsRoute = {
    enabled: metrics !== null,
    text: () => (isWorker ? gathered(gatherFromPrimary('metrics')) : metrics!.text()),
  };
  registerMetricsRoute(router, metricsRoute);
  registerMetricsRoute(metricsRouter, metricsRoute);
  registerStatusRoute(router, {
    config: current,
    ops: () => ops,
    store: () => store,
    recent: () => (isWorker ? gathered(gatherFromPrimary('recent')) : Promise.resolve(assignments.recent())),
    version: VERSION,
    startedAt: o.startedAt,
    workers: config.workers,
    log,
  });

  const trusted = (req: IncomingMessage): boolean => peerTrusted(main, req);
  // With workers: N, each worker allows its share, so that the group allows the limit.
  const limiter = (): FailureLimiter =>
    new FailureLimiter(Math.ceil(AUTH_FAILURES_ALLOWED / (isWorker ? config.workers : 1)));
  const control =
    config.controlListen === null
      ? null
      : createControlServer({
          router,
          credentials: () => ({
            adminTokens: current().admin.tokens,
            metricsTokenHash: current().metrics.tokenHash,
            statusLoopbackWithoutToken: current().status.loopbackWithoutToken,
          }),
          log,
          meter,
          trusted,
          limiter: limiter(),
        });
  // The metrics listener knows the metrics token alone: no admin token works there.
  const metricsListener =
    config.metrics.listen === null
      ? null
      : createControlServer({
          router: metricsRouter,
          credentials: () => ({
            adminTokens: [],
            metricsTokenHash: current().metrics.tokenHash,
            statusLoopbackWithoutToken: false,
          }),
          log,
          meter,
          trusted,
          limiter: limiter(),
        });

  const g: Graph = {
    config,
    log,
    isWorker,
    kinds,
    answers,
    main,
    store,
    snapshot: o.snapshot,
    table,
    metrics,
    assignments,
    proxy,
    server: proxy?.server ?? createMainServer(main),
    ops,
    router,
    control,
    metricsListener,
  };
  return g;
}
