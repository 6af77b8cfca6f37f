/**
 * The sharder's Prometheus metrics (prom-client registry). Hot-path numbers are plain integers
 * kept where they happen (request meters, cache hit counters, proxy stats, assignment
 * counts) and turned into samples only when scraped; store calls (first assignments, admin
 * operations; never a cache hit) go through prom-client directly. Objects per bucket are read
 * from the store's kept counts at scrape time: one small query per kind.
 *
 * Names follow Prometheus conventions: `sharder_` prefix, `_total` counters, `_seconds`
 * histograms, base units, and no label with unbounded values (no user names).
 *
 * With `workers: N` each worker keeps its own registry; the cluster primary adds them up
 * (gather.ts). The `aggregator` of each metric says how: sums by default, `first` for values
 * every worker reads from the same store or configuration.
 */
import { Counter, Histogram, Registry, type Metric } from 'prom-client';
import { registerGcMetrics, registerProcessMetrics } from './process.js';
import type { Config } from '../config/types.js';
import type { ProxyStats } from '../proxy/stats.js';
import type { KindRuntime } from '../core/buckets.js';
import type { Store } from '../store/types.js';
import type { AssignmentCounter } from './assignments.js';
import type { LatencyHistogram, RecordingMeter } from './http.js';
import type { StoreObserver } from './store.js';

export const CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

type Labels = Record<string, string | number>;
interface Sample {
  value: number;
  labels: Labels;
  metricName?: string;
}
type Aggregator = 'sum' | 'first' | 'min' | 'max' | 'average' | 'omit';

/**
 * A metric whose samples are computed when scraped, from numbers kept elsewhere. It has the
 * shape prom-client's Registry expects of a metric (name, help, type, aggregator, get()).
 */
class Collected {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
    readonly aggregator: Aggregator,
    private readonly samples: () => Sample[] | Promise<Sample[]>,
  ) {}

  async get(): Promise<{ name: string; help: string; type: string; aggregator: Aggregator; values: Sample[] }> {
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values: await this.samples(),
    };
  }

  reset(): void {}
}

/** A histogram's samples (`_bucket` cumulative with `le`, `_sum`, `_count`) from plain counts. */
export function histogramSamples(name: string, labels: Labels, h: LatencyHistogram): Sample[] {
  const out: Sample[] = [];
  let cumulative = 0;
  for (let i = 0; i < h.bounds.length; i++) {
    cumulative += h.counts[i]!;
    out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: h.bounds[i]! }, value: cumulative });
  }
  cumulative += h.counts[h.bounds.length]!;
  out.push({ metricName: `${name}_bucket`, labels: { ...labels, le: '+Inf' }, value: cumulative });
  out.push({ metricName: `${name}_sum`, labels, value: h.sum });
  out.push({ metricName: `${name}_count`, labels, value: h.count });
  return out;
}

/** Store latency buckets, in seconds: a SQLite read (~20 µs) to a PostgreSQL write under lock waits. */
const STORE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

let processRegistry: Registry | undefined;

/**
 * Process metrics (prom-client's defaults, process.ts): one
 * registry per process, made on first use, so that several sharders in one process (tests)
 * share one event loop monitor.
 */
export function processMetrics(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry();
    registerProcessMetrics(processRegistry);
  }
  return processRegistry;
}

export interface MetricsSources {
  readonly version: string;
  readonly meter: RecordingMeter;
  readonly assignments: AssignmentCounter;
  /** The running configuration (it changes on reload). */
  config(): Config;
  /** Runtime kinds: caches and their counters. */
  kinds(): Iterable<KindRuntime>;
  /** The store whose kept counts are the objects per bucket. */
  store(): Store;
  /** A worker of workers: N (the cluster primary reports sharder_workers then). */
  readonly clustered: boolean;
}

type StoreRead = Promise<{ up: boolean; counts: Map<string, Map<string, number>> }>;

export class SharderMetrics implements StoreObserver {
  readonly registry = new Registry();
  private readonly storeDuration: Histogram<'operation'>;
  private readonly storeErrors: Counter<'operation' | 'code'>;
  private readonly storeTimeouts: Counter<'kind'>;
  private lastRead: StoreRead | undefined;

  /** Turns on what observes the whole process (metrics.gc: the GC observer), once the sharder starts. */
  start(): void {
    if (this.src.config().metrics.gc) registerGcMetrics(processMetrics());
  }

  constructor(private readonly src: MetricsSources) {
    const r = this.registry;
    const add = (
      name: string,
      help: string,
      type: 'counter' | 'gauge' | 'histogram',
      aggregator: Aggregator,
      samples: () => Sample[] | Promise<Sample[]>,
    ): void => {
      r.registerMetric(new Collected(name, help, type, aggregator, samples) as unknown as Metric);
    };

    add('sharder_info', 'Always 1; the labels say what is running.', 'gauge', 'first', () => {
      const c = src.config();
      return [{ labels: { version: src.version, mode: c.mode, backend: src.store().backend }, value: 1 }];
    });

    if (!src.clustered)
      add(
        'sharder_workers',
        'Processes whose metrics are in this scrape (1 without workers: N).',
        'gauge',
        'first',
        () => [{ labels: {}, value: 1 }],
      );

    // Labelled as JupyterHub labels its request metrics: `handler`, `method`, `code`.
    add(
      'sharder_http_requests_total',
      'Responses by listener (main, control), handler (endpoint), method and HTTP status code.',
      'counter',
      'sum',
      () => {
        const out: Sample[] = [];
        for (const m of src.meter.all()) {
          for (const r of m.responses())
            out.push({
              labels: { listener: m.listener, handler: m.endpoint, method: r.method, code: r.code },
              value: r.value,
            });
        }
        return out;
      },
    );
    add(
      'sharder_http_request_duration_seconds',
      'Time from a request reaching its handler to its answer being written, by listener, handler, method and ' +
        'status code.',
      'histogram',
      'sum',
      () => {
        const out: Sample[] = [];
        for (const m of src.meter.all()) {
          for (const l of m.latencies())
            out.push(
              ...histogramSamples(
                'sharder_http_request_duration_seconds',
                { listener: m.listener, handler: m.endpoint, method: l.method, code: l.code },
                l.histogram,
              ),
            );
        }
        return out;
      },
    );

    add(
      'sharder_assignments_total',
      'First assignments made by this instance, by kind and bucket.',
      'counter',
      'sum',
      () => [...src.assignments.totals()].map(([kind, bucket, value]) => ({ labels: { kind, bucket }, value })),
    );

    add(
      'sharder_objects',
      "Objects assigned to each bucket (the store's kept counts, read at scrape time): the configured buckets " +
        'and any other bucket the store names.',
      'gauge',
      'first',
      async () => {
        const { counts } = await this.readStore();
        const out: Sample[] = [];
        for (const k of src.config().kinds.values()) {
          const c = counts.get(k.name);
          if (c === undefined) continue; // the store did not answer: no samples rather than zeros
          for (const b of k.buckets) out.push({ labels: { kind: k.name, bucket: b.name }, value: c.get(b.name) ?? 0 });
          for (const [bucket, value] of c)
            if (!k.buckets.some((b) => b.name === bucket)) out.push({ labels: { kind: k.name, bucket }, value });
        }
        return out;
      },
    );
    add(
      'sharder_store_up',
      "1 when the store answered this scrape's reads within store.timeout_ms, else 0.",
      'gauge',
      'min',
      async () => [{ labels: {}, value: (await this.readStore()).up ? 1 : 0 }],
    );

    add('sharder_bucket_weight', 'Configured weight of each bucket.', 'gauge', 'first', () => {
      const out: Sample[] = [];
      for (const k of src.config().kinds.values())
        for (const b of k.buckets) out.push({ labels: { kind: k.name, bucket: b.name }, value: b.weight });
      return out;
    });
    add(
      'sharder_bucket_state',
      'Configured state of each bucket: 1 for its state (active or draining), 0 for the other.',
      'gauge',
      'first',
      () => {
        const out: Sample[] = [];
        for (const k of src.config().kinds.values()) {
          for (const b of k.buckets)
            for (const state of ['active', 'draining'])
              out.push({ labels: { kind: k.name, bucket: b.name, state }, value: b.state === state ? 1 : 0 });
        }
        return out;
      },
    );

    add(
      'sharder_cache_entries',
      'Assignments held in memory, by kind (with workers: N, all workers together).',
      'gauge',
      'sum',
      () => [...src.kinds()].map((k) => ({ labels: { kind: k.name }, value: k.cache.size })),
    );
    add('sharder_cache_hits_total', 'Lookups answered from memory, by kind.', 'counter', 'sum', () =>
      [...src.kinds()].map((k) => ({ labels: { kind: k.name }, value: k.cache.hits })),
    );
    add('sharder_cache_misses_total', 'Lookups that had to ask the store, by kind.', 'counter', 'sum', () =>
      [...src.kinds()].map((k) => ({ labels: { kind: k.name }, value: k.cache.misses })),
    );

    this.storeDuration = new Histogram({
      name: 'sharder_store_operation_duration_seconds',
      help: 'Duration of store calls by operation (Store method).',
      labelNames: ['operation'],
      buckets: STORE_BUCKETS,
      registers: [r],
    });
    this.storeErrors = new Counter({
      name: 'sharder_store_errors_total',
      help: 'Store calls that failed, by operation and error code.',
      labelNames: ['operation', 'code'],
      registers: [r],
    });
    this.storeTimeouts = new Counter({
      name: 'sharder_store_timeouts_total',
      help: 'First assignments answered 503 because the store did not answer within store.timeout_ms, by kind.',
      labelNames: ['kind'],
      registers: [r],
    });
  }

  /** Proxy mode's counters (proxy/stats.ts keeps them as a plain object). */
  addProxy(p: ProxyStats): void {
    const add = (name: string, help: string, type: 'counter' | 'gauge', samples: () => Sample[]): void => {
      this.registry.registerMetric(new Collected(name, help, type, 'sum', samples) as unknown as Metric);
    };
    const counter = (name: string, help: string, value: () => number): void =>
      add(name, help, 'counter', () => [{ labels: {}, value: value() }]);
    counter('sharder_proxy_requests_total', 'Proxy mode: HTTP requests forwarded to a hub.', () => p.requests);
    counter(
      'sharder_proxy_websockets_total',
      'Proxy mode: websocket handshakes forwarded to a hub.',
      () => p.websockets,
    );
    add('sharder_proxy_websockets_open', 'Proxy mode: websockets open now.', 'gauge', () => [
      { labels: {}, value: p.websocketsOpen },
    ]);
    counter(
      'sharder_proxy_refused_total',
      'Proxy mode: requests answered without reaching a hub (no or bad identity).',
      () => p.refused,
    );
    counter(
      'sharder_proxy_login_redirects_total',
      'Proxy mode: requests without identity redirected to proxy.login_url.',
      () => p.loginRedirects,
    );
    counter(
      'sharder_proxy_retries_total',
      'Proxy mode: idempotent requests sent again after a kept-alive hub connection turned out closed.',
      () => p.retries,
    );
    counter(
      'sharder_proxy_client_aborts_total',
      'Proxy mode: clients gone before their answer was complete.',
      () => p.clientAborts,
    );
    add(
      'sharder_proxy_upstream_errors_total',
      'Proxy mode: hub failures by kind, bucket (hub) and code (SHARD_ERR_UPSTREAM_DOWN, _TIMEOUT, ' +
        'SHARD_ERR_NO_UPSTREAM).',
      'counter',
      () => {
        const out: Sample[] = [];
        for (const [hub, codes] of Object.entries(p.errorsByHub)) {
          const [kind, bucket] = hub.split('/') as [string, string];
          for (const [code, value] of Object.entries(codes)) out.push({ labels: { kind, bucket, code }, value });
        }
        return out;
      },
    );
  }

  /** StoreObserver: a store call finished. */
  done(operation: string, seconds: number, errorCode: string | null): void {
    this.storeDuration.observe({ operation }, seconds);
    if (errorCode !== null) this.storeErrors.inc({ operation, code: errorCode });
  }

  timedOut(kind: string): void {
    this.storeTimeouts.inc({ kind });
  }

  /**
   * The counts of every configured kind. The metrics that need them ask in the same tick of a
   * scrape, so they share one read while it is in flight; the next scrape reads afresh.
   */
  private readStore(): StoreRead {
    if (this.lastRead !== undefined) return this.lastRead;
    const store = this.src.store();
    const config = this.src.config();
    const result = (async () => {
      const counts = new Map<string, Map<string, number>>();
      try {
        await withTimeout(
          Promise.all([...config.kinds.keys()].map(async (k) => counts.set(k, await store.counts(k)))),
          config.store.timeoutMs,
        );
        return { up: true, counts };
      } catch {
        // Counted in sharder_store_errors_total; the scrape itself must still answer.
        return { up: false, counts: new Map<string, Map<string, number>>() };
      }
    })();
    this.lastRead = result;
    void result.finally(() => {
      if (this.lastRead === result) this.lastRead = undefined;
    });
    return result;
  }

  /** This process's samples, for the cluster primary to add up. */
  async json(): Promise<unknown[]> {
    return Registry.merge([this.registry, processMetrics()]).getMetricsAsJSON();
  }

  /** The Prometheus text of this process alone. */
  text(): Promise<string> {
    return Registry.merge([this.registry, processMetrics()]).metrics();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), ms);
      timer.unref();
    }),
  ]).finally(() => clearTimeout(timer));
}
