/**
 * The running sharder: what compose.ts built, started (store, listeners, change feed, table),
 * reloaded and stopped. The process wiring (serve.ts) connects signals to it; tests start it
 * in-process.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { restartOnlyChanges } from '../config/schema.js';
import type { Config } from '../config/types.js';
import type { KindRuntime } from '../core/buckets.js';
import type { AssignmentTable } from '../core/table.js';
import { StoreUnavailableError } from '../errors.js';
import type { ControlRouter } from '../http/control.js';
import { listenOn } from '../http/bind.js';
import type { Logger } from '../log.js';
import type { AssignmentCounter } from '../metrics/assignments.js';
import { provide } from '../metrics/gather.js';
import type { SharderMetrics } from '../metrics/registry.js';
import type { Operations } from '../ops/index.js';
import type { ProxyMode } from '../proxy/index.js';
import { openStore, storeLocation } from '../store/registry.js';
import { PendingStore } from '../store/pending.js';
import { PostgresStore } from '../store/postgres/index.js';
import { Snapshot } from '../store/snapshot.js';
import type { Store } from '../store/types.js';
import { applySettings, compose, type Graph } from './compose.js';
import { STOP_GRACE_MS } from './signals.js';

export interface SharderOptions {
  log: Logger;
  /** An already-open store (tests); otherwise the configured one is opened. */
  store?: Store;
  /** This process is a worker of `workers: N` (the caller reads node:cluster); default false. */
  isWorker?: boolean;
}

export class Sharder {
  private stopWatching: () => void = () => {};
  private stopping: Promise<void> | undefined;
  /** Every kind's whole assignment table, kept in memory from the change feed (core/table.ts). */
  readonly table: AssignmentTable;
  readonly server: Server;
  /** Proxy mode's forwarding and its counters (`proxy.stats`); undefined in auth mode. */
  readonly proxy: ProxyMode | undefined;
  /** Routes of the control listener: the admin API, and whatever else registers there. */
  readonly router: ControlRouter;
  /** The control listener, or null when control_listen is off. */
  readonly control: Server | null;
  /** metrics.listen's listener (only /metrics), or null when off. */
  readonly metricsListener: Server | null;
  /** Admin operations on this server's store (their changes drop cache entries here). */
  readonly ops: Operations;
  /** The store, timed and counted when metrics are on (metrics/store.ts). */
  readonly store: Store;
  /** Prometheus metrics; null when metrics.enabled is false. */
  readonly metrics: SharderMetrics | null;
  /** First assignments made here: sharder_assignments_total and the status page's last hour. */
  readonly assignments: AssignmentCounter;

  private constructor(private readonly g: Graph) {
    this.table = g.table;
    this.server = g.server;
    this.proxy = g.proxy;
    this.router = g.router;
    this.control = g.control;
    this.metricsListener = g.metricsListener;
    this.ops = g.ops;
    this.store = g.store;
    this.metrics = g.metrics;
    this.assignments = g.assignments;
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
      opts.log.warn(
        { event: 'store_unreachable_at_start', err: err.message },
        'PostgreSQL cannot be reached: starting from the snapshot; new users get 503 until it answers',
      );
      pending = new PendingStore(
        'postgres',
        storeLocation(config),
        () => openStore(config, opts.log),
        (s) => sharder?.claimSnapshot(s),
        opts.log,
      );
      store = pending;
    }
    sharder = new Sharder(
      compose(config, { log: opts.log, store, snapshot, isWorker: opts.isWorker ?? false, startedAt: Date.now() }),
    );
    sharder.watch();
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
    opts.log.info(
      {
        event: 'started',
        config: config.file,
        store: { backend: store.backend, location: store.location },
        mode: config.mode,
        listen: sharder.url,
        control: sharder.controlUrl,
        ...(sharder.metricsUrl === null ? {} : { metrics_listen: sharder.metricsUrl }),
        metrics: config.metrics.enabled ? (config.metrics.tokenHash === null ? 'open' : 'token') : 'off',
        kinds: Object.fromEntries(
          [...config.kinds].map(([k, v]) => [k, v.buckets.map((b) => `${b.name}(${b.state}, weight ${b.weight})`)]),
        ),
      },
      `sharder listening on ${sharder.url}`,
    );
    if (sharder.control !== null && config.admin.tokens.length === 0) {
      opts.log.warn(
        { event: 'admin_api_disabled' },
        'no admin token configured (admin.token, admin.tokens or SHARDER_ADMIN_TOKEN): the admin API answers ' +
          '401 to everything',
      );
    }
    return sharder;
  }

  /**
   * What runs from start to stop: the GC observer (metrics.gc), the store's change feed into
   * the table, and, in a worker of workers: N, the answers to the primary's gathers.
   */
  private watch(): void {
    const { metrics, assignments, store, table, config } = this.g;
    metrics?.start();
    this.stopWatching = store.watch((kind, name, bucket) => table.changed(kind, name, bucket), config.store.pollMs);
    if (this.g.isWorker) {
      if (metrics !== null) provide('metrics', () => metrics.json());
      provide('recent', () => assignments.recent());
    }
  }

  /** The database answers: the snapshot records which one it is and starts following the table. */
  private claimSnapshot(store: Store): void {
    if (this.stopping !== undefined) return;
    this.g.snapshot?.claim({
      location: store.location,
      systemId: store instanceof PostgresStore ? store.identity.systemId : null,
      kinds: [...this.g.kinds.keys()],
    });
  }

  /** The database is away at start: the known users come from the snapshot, when it is a copy of this database. */
  private seedFromSnapshot(location: string): void {
    const s = this.g.snapshot!;
    const contents = s.read(
      { location, systemId: null, kinds: [...this.g.kinds.keys()] },
      this.g.config.cache.maxEntries,
    );
    if (contents === undefined) return;
    let rows = 0;
    for (const [name, list] of contents.rows) rows += this.table.seed(this.g.kinds.get(name)!, list);
    const ageS = Math.max(0, Math.round((Date.now() - contents.writtenAt) / 1000));
    this.g.log.info(
      { event: 'snapshot_loaded', file: s.path, rows, age_s: ageS },
      `assignment table loaded from snapshot ${s.path}: ${rows} rows written ${ageS} s ago`,
    );
  }

  get url(): string {
    return urlOf(this.server)!;
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
    return this.g.kinds.get(name);
  }

  /**
   * Applies a new configuration to the running server: buckets, weights, states, upstreams,
   * identity and cookie settings. The listeners and the database stay as they were (changing
   * them needs a restart, which is logged).
   */
  reload(next: Config): void {
    const g = this.g;
    for (const key of restartOnlyChanges(g.config, next))
      g.log.warn({ event: 'reload_ignored', key }, `${key} changed: restart to apply`);
    g.proxy?.reload(next.proxy);
    g.main.settings = applySettings(g, next);
    g.table.loadNew();
    g.snapshot?.setKinds([...next.kinds.keys()]);
    g.config = next;
    g.log.info({ event: 'reloaded', config: next.file }, 'configuration reloaded');
  }

  /** Stops accepting, lets requests in flight finish (up to STOP_GRACE_MS), closes the store. */
  stop(graceMs = STOP_GRACE_MS): Promise<void> {
    this.stopping ??= (async () => {
      this.stopWatching();
      this.table.stop();
      const servers = [this.server, this.control, this.metricsListener].filter(
        (s): s is Server => s !== null && s.listening,
      );
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
      this.g.snapshot?.close();
      await this.store.close();
      this.g.log.info({ event: 'stopped' }, 'sharder stopped');
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
    log.warn(
      { event: 'snapshot_unusable', file, err: (err as Error).message },
      `snapshot ${file} cannot be used: ${(err as Error).message}`,
    );
    return undefined;
  }
}

function urlOf(server: Server | null): string | null {
  const a = server?.address() as AddressInfo | null | undefined;
  if (!a) return null;
  return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
}
