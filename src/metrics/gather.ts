/**
 * With `workers: N`, the control listener is shared like the main one: a scrape of /metrics
 * (or a load of /status) reaches one worker, which only knows its own counters. That worker
 * asks the cluster primary, the primary asks every worker over the cluster's IPC channel and
 * combines the answers (metrics through prom-client's AggregatorRegistry), and the answer
 * goes back to the worker that was asked. One scrape therefore reports the whole process
 * group. A worker that does not answer within GATHER_TIMEOUT_MS is left out, and
 * `sharder_workers` says how many answered.
 *
 * Messages carry `sharder: 'gather' | 'collect' | 'collected' | 'gathered'` and an id; anything
 * else on the channel is someone else's and ignored.
 */
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';
import { mergeRecent, type RecentView } from './assignments.js';
import { processMetrics } from './registry.js';

/** Longest wait for the workers' answers; below Prometheus' default 10 s scrape timeout. */
export const GATHER_TIMEOUT_MS = 4_000;

/** What can be gathered: the metrics (prom-client JSON) and the status page's recent assignments. */
export type GatherKind = 'metrics' | 'recent';

interface Message {
  sharder?: string;
  id?: number;
  what?: GatherKind;
  data?: unknown;
  error?: string;
}

// ---- worker side --------------------------------------------------------------------------

/** Each provider returns its part, or a promise of it. */
const providers = new Map<GatherKind, () => unknown>();
const asked = new Map<number, { resolve(v: unknown): void; reject(e: Error): void; timer: NodeJS.Timeout }>();
let nextId = 0;
let listening = false;

function listenAsWorker(): void {
  if (listening) return;
  listening = true;
  process.on('message', (m: Message) => {
    if (typeof m !== 'object' || m === null || typeof m.id !== 'number') return;
    if (m.sharder === 'collect' && m.what !== undefined) {
      const fn = providers.get(m.what);
      Promise.resolve()
        .then(() => (fn === undefined ? Promise.reject(new Error(`nothing provides ${m.what}`)) : fn()))
        .then(
          (data) => process.send?.({ sharder: 'collected', id: m.id, data }),
          (err: unknown) =>
            process.send?.({ sharder: 'collected', id: m.id, error: String((err as Error).message ?? err) }),
        );
    } else if (m.sharder === 'gathered') {
      const a = asked.get(m.id);
      if (a === undefined) return;
      asked.delete(m.id);
      clearTimeout(a.timer);
      if (m.error !== undefined) a.reject(new Error(m.error));
      else a.resolve(m.data);
    }
  });
}

/** Offers this worker's part of `what` to the primary's gathers. */
export function provide(what: GatherKind, fn: () => unknown): void {
  providers.set(what, fn);
  listenAsWorker();
}

/** Asks the primary for `what` over every worker: Prometheus text for metrics, a RecentView for recent. */
export function gatherFromPrimary(what: 'metrics'): Promise<string>;
export function gatherFromPrimary(what: 'recent'): Promise<RecentView>;
export function gatherFromPrimary(what: GatherKind): Promise<unknown> {
  listenAsWorker();
  const id = nextId++;
  return new Promise((resolve, reject) => {
    // The primary answers within GATHER_TIMEOUT_MS; this only guards against it being gone.
    const timer = setTimeout(() => {
      asked.delete(id);
      reject(new Error('the cluster primary did not answer'));
    }, GATHER_TIMEOUT_MS + 2_000);
    timer.unref();
    asked.set(id, { resolve, reject, timer });
    process.send?.({ sharder: 'gather', id, what });
  });
}

// ---- primary side -------------------------------------------------------------------------

export interface PrimaryStats {
  /** Workers the configuration asks for. */
  readonly configured: number;
  /** Workers restarted after dying, since start. */
  restarts(): number;
}

/** The primary's own metrics, added to every gathered scrape. */
function primaryRegistry(stats: PrimaryStats, answered: () => number): Registry {
  const r = new Registry();
  new Gauge({
    name: 'sharder_workers',
    help: 'Processes whose metrics are in this scrape (workers: N: the workers that answered within 4 s).',
    registers: [r],
    aggregator: 'first',
    collect() {
      this.set(answered());
    },
  });
  new Gauge({
    name: 'sharder_workers_configured',
    help: 'Workers the configuration asks for (workers: N).',
    registers: [r],
    aggregator: 'first',
    collect() {
      this.set(stats.configured);
    },
  });
  new Counter({
    name: 'sharder_worker_restarts_total',
    help: 'Workers restarted by the cluster primary after they died.',
    registers: [r],
    aggregator: 'first',
    collect() {
      this.reset();
      this.inc(stats.restarts());
    },
  });
  return r;
}

/** Collections in flight in the primary: id → the answer handler. */
const collecting = new Map<number, (m: Message) => void>();

/** Sends `collect` to every connected worker; resolves with the answers that came in time. */
function collectAll(what: GatherKind): Promise<unknown[]> {
  const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && w.isConnected());
  if (workers.length === 0) return Promise.resolve([]);
  const id = nextId++;
  return new Promise((resolve) => {
    const parts: unknown[] = [];
    let left = workers.length;
    const finish = (): void => {
      clearTimeout(timer);
      collecting.delete(id);
      resolve(parts);
    };
    const timer = setTimeout(finish, GATHER_TIMEOUT_MS);
    collecting.set(id, (m) => {
      if (m.error === undefined) parts.push(m.data);
      if (--left === 0) finish();
    });
    for (const w of workers) w.send({ sharder: 'collect', id, what });
  });
}

/** Runs in the cluster primary: answers the workers' gathers. */
export function serveGathers(stats: PrimaryStats): void {
  let answered = 0;
  const own = primaryRegistry(stats, () => answered);
  cluster.on('message', (worker: Worker, m: Message) => {
    if (typeof m !== 'object' || m === null || typeof m.id !== 'number') return;
    if (m.sharder === 'collected') return collecting.get(m.id)?.(m);
    if (m.sharder !== 'gather') return;
    const reply = (data: unknown, error?: string): void => {
      if (worker.isConnected())
        worker.send(
          error === undefined ? { sharder: 'gathered', id: m.id, data } : { sharder: 'gathered', id: m.id, error },
        );
    };
    (async () => {
      const parts = await collectAll(m.what === 'recent' ? 'recent' : 'metrics');
      if (m.what === 'recent') return reply(mergeRecent(parts as RecentView[]));
      answered = parts.length;
      const mine = await Registry.merge([own, processMetrics()]).getMetricsAsJSON();
      // prom-client's types want its own metric objects; the JSON the workers sent is that shape.
      const all = [...(parts as Parameters<typeof AggregatorRegistry.aggregate>[0]), mine];
      reply(await AggregatorRegistry.aggregate(all).metrics());
    })().catch((err: unknown) => reply(undefined, String((err as Error).message ?? err)));
  });
}
