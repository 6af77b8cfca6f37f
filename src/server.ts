/**
 * The running sharder: store, runtime kinds, assigner and the main listener, with reload and
 * graceful stop. The CLI's `serve` wires signals to it; tests start it in-process.
 */
import type { AddressInfo } from 'node:net';
import type { IncomingMessage, Server } from 'node:http';
import type { Config } from './config/types.js';
import { restartOnlyChanges } from './config/schema.js';
import type { Logger } from './log.js';
import { Assigner } from './service/assigner.js';
import { applyConfig, type KindRuntime } from './service/runtime.js';
import { AssignmentTable } from './service/table.js';
import { createMainServer, type MainContext, type MainSettings } from './http/main.js';
import { identitySettings } from './http/identity.js';
import { ProxyMode } from './proxy/index.js';
import { ControlRouter, createControlServer } from './http/control.js';
import { registerAdminApi } from './http/api.js';
import { listenOn } from './http/bind.js';
import { Operations } from './ops/index.js';
import { openStore, storeLocation } from './store/registry.js';
import { PendingStore } from './store/pending.js';
import { PostgresStore } from './store/postgres/index.js';
import { Snapshot } from './store/snapshot.js';
import type { Store } from './store/types.js';
import { isClusterWorker } from './cluster.js';
import { AssignmentCounter } from './metrics/assignments.js';
import { gatherFromPrimary, provide } from './metrics/gather.js';
import { NO_METER, RecordingMeter } from './metrics/http.js';
import { SharderMetrics } from './metrics/registry.js';
import { registerMetricsRoute } from './metrics/route.js';
import { instrumentStore } from './metrics/store.js';
import { ClusterGatherError, StoreUnavailableError } from './errors.js';
import { peerTrusted } from './http/main.js';
import { AUTH_FAILURES_ALLOWED, FailureLimiter } from './http/rate-limit.js';
import { registerStatusRoute } from './status/route.js';
import { VERSION } from './version.js';

/** How long a graceful stop waits for requests in flight before closing their connections. */
export const STOP_GRACE_MS = 10_000;

export interface SharderOptions {
  log: Logger;
  /** An already-open store (tests); otherwise the configured one is opened. */
  store?: Store;
}

export class Sharder {
  private readonly kinds = new Map<string, KindRuntime>();
  /** Every kind's whole assignment table, kept in memory from the change feed (service/table.ts). */
  readonly table: AssignmentTable;
  private readonly ctx: MainContext;
  private readonly stopWatching: () => void;
  private stopping: Promise<void> | undefined;
  readonly server: Server;
  /** Proxy mode's forwarding and its counters (`proxy.stats`); undefined in auth mode. */
  readonly proxy: ProxyMode | undefined;
  /** Routes of the control listener: the admin API, and whatever else registers there. */
  readonly router = new ControlRouter();
  /** Routes of the metrics listener (metrics.listen): /metrics alone. */
  private readonly metricsRouter = new ControlRouter();
  /** The control listener, or null when control_listen is off. */
  readonly control: Server | null;
  /**
   * metrics.listen: a listener of its own with only /metrics (as configurable-http-proxy's
   * --metrics-port), so that Prometheus can reach it where the admin API must not be; null
   * when off. The same control server as the admin API's, with a router that has one route.
   */
  readonly metricsListener: Server | null;
  /**
   * Admin operations on this server's store. Changes made through them are on this process's
   * own connection, which its change watcher does not report: they drop cache entries here.
   */
  readonly ops: Operations;
  /** The store, timed and counted when metrics are on (metrics/store.ts). */
  readonly store: Store;
  /** Prometheus metrics; null when metrics.enabled is false. */
  readonly metrics: SharderMetrics | null;
  /** First assignments made here: sharder_assignments_total and the status page's last hour. */
  readonly assignments = new AssignmentCounter();
  private readonly startedAt = Date.now();

  private constructor(
    private config: Config,
    store: Store,
    private readonly log: Logger,
    /** The local copy of the table (store.snapshot_file), or undefined. */
    private readonly snapshot: Snapshot | undefined,
  ) {
    const meter = config.metrics.enabled ? new RecordingMeter() : NO_METER;
    this.metrics = meter instanceof RecordingMeter
      ? new SharderMetrics({ version: VERSION, meter, assignments: this.assignments, config: () => this.config, kinds: () => this.kinds.values(), store: () => this.store, clustered: isClusterWorker() })
      : null;
    this.store = this.metrics === null ? store : instrumentStore(store, this.metrics);
    const events = {
      assigned: (kind: string, bucket: string, name: string) => {
        this.assignments.record(kind, bucket);
        this.table.assigned(kind, name, bucket);
      },
      timedOut: (kind: string) => this.metrics?.timedOut(kind),
    };
    this.ctx = {
      settings: this.settingsFor(config),
      assigner: new Assigner(this.store, log, () => this.config.store.timeoutMs, events),
      log,
      meter,
      ready: () => this.store.ping(),
    };
    this.proxy = config.mode === 'proxy' ? new ProxyMode(this.ctx, config.proxy) : undefined;
    if (this.proxy !== undefined) this.metrics?.addProxy(this.proxy.stats);
    this.server = this.proxy?.server ?? createMainServer(this.ctx);
    this.table = new AssignmentTable({ store: this.store, kinds: () => this.kinds, assigner: this.ctx.assigner, log, snapshot });
    this.ops = new Operations({ store: this.store, config: () => this.config, changed: (kind, name) => this.table.changed(kind, name), log });
    registerAdminApi(this.router, () => this.ops);
    this.registerObservability(log);
    const trusted = (req: IncomingMessage): boolean => peerTrusted(this.ctx, req);
    // With workers: N, each worker allows its share, so that the group allows the limit.
    const limiter = (): FailureLimiter => new FailureLimiter(Math.ceil(AUTH_FAILURES_ALLOWED / (isClusterWorker() ? config.workers : 1)));
    this.control = config.controlListen === null ? null : createControlServer({
      router: this.router,
      credentials: () => ({ adminTokens: this.config.admin.tokens, metricsTokenHash: this.config.metrics.tokenHash, statusLoopbackWithoutToken: this.config.status.loopbackWithoutToken }),
      log,
      meter,
      trusted,
      limiter: limiter(),
    });
    // The metrics listener knows the metrics token alone: no admin token works there.
    this.metricsListener = config.metrics.listen === null ? null : createControlServer({
      router: this.metricsRouter,
      credentials: () => ({ adminTokens: [], metricsTokenHash: this.config.metrics.tokenHash, statusLoopbackWithoutToken: false }),
      log,
      meter,
      trusted,
      limiter: limiter(),
    });
    this.stopWatching = this.store.watch((kind, name, bucket) => this.table.changed(kind, name, bucket), config.store.pollMs);
  }

  /**
   * /metrics and /status on the control listener. With workers: N, both are gathered over
   * every worker through the cluster primary (metrics/gather.ts).
   */
  private registerObservability(log: Logger): void {
    const metrics = this.metrics;
    const worker = isClusterWorker();
    const gathered = async <T>(p: Promise<T>): Promise<T> => {
      try {
        return await p;
      } catch (err) {
        throw new ClusterGatherError(`the workers' numbers could not be gathered: ${(err as Error).message}`, { cause: err });
      }
    };
    const metricsRoute = {
      enabled: metrics !== null,
      text: () => (worker ? gathered(gatherFromPrimary('metrics')) : metrics!.text()),
    };
    registerMetricsRoute(this.router, metricsRoute);
    registerMetricsRoute(this.metricsRouter, metricsRoute);
    registerStatusRoute(this.router, {
      config: () => this.config,
      ops: () => this.ops,
      store: () => this.store,
      recent: () => (worker ? gathered(gatherFromPrimary('recent')) : Promise.resolve(this.assignments.recent())),
      version: VERSION,
      startedAt: this.startedAt,
      workers: this.config.workers,
      log,
    });
    if (worker) {
      if (metrics !== null) provide('metrics', () => metrics.json());
      provide('recent', () => this.assignments.recent());
    }
  }

  static async start(config: Config, opts: SharderOptions): Promise<Sharder> {
    const snapshot = openSnapshot(config, opts.log);
    let store: Store;
    let pending: PendingStore | undefined;
    let sharder: Sharder | undefined;
    try {
      store = opts.store ?? (await openStore(config, opts.log));
    } catch (err) {
      const db = config.database;
      if (snapshot === undefined || db.backend !== 'postgres' || !(err instanceof StoreUnavailableError)) {
        snapshot?.close();
        throw err;
      }
      opts.log.warn({ event: 'store_unreachable_at_start', err: err.message }, 'PostgreSQL cannot be reached: starting from the snapshot; new users get 503 until it answers');
      pending = new PendingStore('postgres', storeLocation(config), () => openStore(config, opts.log), (s) => sharder?.claimSnapshot(s), opts.log);
      store = pending;
    }
    sharder = new Sharder(config, store, opts.log, snapshot);
    if (pending !== undefined) sharder.seedFromSnapshot(pending.location);
    else sharder.claimSnapshot(store);
    try {
      await listenOn(sharder.server, config.listen, 'listen', config.file);
      if (sharder.control !== null && config.controlListen !== null) {
        await listenOn(sharder.control, config.controlListen, 'control_listen', config.file);
      }
      if (sharder.metricsListener !== null && config.metrics.listen !== null) {
        await listenOn(sharder.metricsListener, config.metrics.listen, 'metrics.listen', config.file);
      }
      sharder.table.loadNew();
    } catch (err) {
      sharder.table.stop();
      sharder.server.close();
      sharder.control?.close();
      sharder.metricsListener?.close();
      sharder.stopWatching();
      snapshot?.close();
      if (!opts.store) await store.close();
      throw err;
    }
    opts.log.info({
      event: 'started',
      config: config.file,
      store: { backend: store.backend, location: store.location },
      mode: config.mode,
      listen: sharder.url,
      control: sharder.controlUrl,
      ...(sharder.metricsUrl === null ? {} : { metrics_listen: sharder.metricsUrl }),
      metrics: config.metrics.enabled ? (config.metrics.tokenHash === null ? 'open' : 'token') : 'off',
      kinds: Object.fromEntries([...config.kinds].map(([k, v]) => [k, v.buckets.map((b) => `${b.name}(${b.state}, weight ${b.weight})`)])),
    }, `sharder listening on ${sharder.url}`);
    if (sharder.control !== null && config.admin.tokens.length === 0) {
      opts.log.warn({ event: 'admin_api_disabled' }, 'no admin token configured (admin.token, admin.tokens or SHARDER_ADMIN_TOKEN): the admin API answers ' + '401 to everything');
    }
    return sharder;
  }

  /** The database answers: the snapshot records which one it is and starts following the table. */
  private claimSnapshot(store: Store): void {
    if (this.stopping !== undefined) return;
    this.snapshot?.claim({ location: store.location, systemId: store instanceof PostgresStore ? store.identity.systemId : null, kinds: [...this.kinds.keys()] });
  }

  /** The database is away at start: the known users come from the snapshot, when it is a copy of this database. */
  private seedFromSnapshot(location: string): void {
    const s = this.snapshot!;
    const contents = s.read({ location, systemId: null, kinds: [...this.kinds.keys()] }, this.config.cache.maxEntries);
    if (contents === undefined) return;
    let rows = 0;
    for (const [name, list] of contents.rows) rows += this.table.seed(this.kinds.get(name)!, list);
    const ageS = Math.max(0, Math.round((Date.now() - contents.writtenAt) / 1000));
    this.log.info({ event: 'snapshot_loaded', file: s.path, rows, age_s: ageS }, `assignment table loaded from snapshot ${s.path}: ${rows} rows written ${ageS} s ago`);
  }

  /** Updates the runtime kinds and returns the handlers' settings for a configuration. */
  private settingsFor(config: Config): MainSettings {
    applyConfig(this.kinds, config);
    return {
      identity: identitySettings(config.identity.header, config.identity.trustedProxies, config.identity.maxLength, config.kindHeader),
      defaultKind: this.kinds.get(config.defaultKind)!,
      kinds: this.kinds,
      redirect: config.shard.redirect,
    };
  }

  get url(): string {
    const a = this.server.address() as AddressInfo;
    return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  /** The control listener's URL, or null when it is off. */
  get controlUrl(): string | null {
    return urlOf(this.control);
  }

  /** The metrics listener's URL (metrics.listen), or null when it is off. */
  get metricsUrl(): string | null {
    return urlOf(this.metricsListener);
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** The runtime kind, for tests and the CLI. */
  kind(name: string): KindRuntime | undefined {
    return this.kinds.get(name);
  }

  /**
   * Applies a new configuration to the running server: buckets, weights, states, upstreams,
   * identity and cookie settings. The listener and the database stay as they were (changing
   * them needs a restart, which is logged).
   */
  reload(next: Config): void {
    for (const key of restartOnlyChanges(this.config, next)) this.log.warn({ event: 'reload_ignored', key }, `${key} changed: restart to apply`);
    this.proxy?.reload(next.proxy);
    this.ctx.settings = this.settingsFor(next);
    this.table.loadNew();
    this.snapshot?.setKinds([...next.kinds.keys()]);
    this.config = next;
    this.log.info({ event: 'reloaded', config: next.file }, 'configuration reloaded');
  }

  /** Stops accepting, lets requests in flight finish (up to STOP_GRACE_MS), closes the store. */
  stop(graceMs = STOP_GRACE_MS): Promise<void> {
    this.stopping ??= (async () => {
      this.stopWatching();
      this.table.stop();
      const servers = [this.server, this.control, this.metricsListener].filter((s): s is Server => s !== null && s.listening);
      const closed = Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
      for (const s of servers) s.closeIdleConnections();
      const timer = setTimeout(() => {
        for (const s of servers) s.closeAllConnections();
        this.proxy?.closeWebsockets(); // upgraded sockets are not the server's to close
      }, graceMs);
      timer.unref();
      await closed;
      clearTimeout(timer);
      this.proxy?.close();
      this.snapshot?.close();
      await this.store.close();
      this.log.info({ event: 'stopped' }, 'sharder stopped');
    })();
    return this.stopping;
  }
}

/** Opens store.snapshot_file; a file that cannot be used is left alone with a warning (the instance runs without). */
function openSnapshot(config: Config, log: Logger): Snapshot | undefined {
  const file = config.store.snapshotFile;
  if (file === null) return undefined;
  try {
    return Snapshot.open(file, log);
  } catch (err) {
    log.warn({ event: 'snapshot_unusable', file, err: (err as Error).message }, `snapshot ${file} cannot be used: ${(err as Error).message}`);
    return undefined;
  }
}

function urlOf(server: Server | null): string | null {
  const a = server?.address() as AddressInfo | null | undefined;
  if (!a) return null;
  return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
}
