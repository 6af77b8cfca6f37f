/**
 * Process metrics: prom-client's default metrics, by prom-client's own code, so that names,
 * help texts, units and cluster aggregation are exactly what configurable-http-proxy's and
 * JupyterHub's dashboards expect (docs/monitoring.md lists them). All of them are read when
 * scraped, or sampled by a native timer (the event loop delay histogram); nothing runs per
 * request.
 *
 * All but one: `nodejs_gc_duration_seconds`. Its collector observes every garbage collection
 * from JavaScript, which at /auth rates (a young-generation GC every few ms) cost about 11% of
 * /auth throughput here (bench/metrics.ts: 0.869 with it, 0.981 without). It is registered
 * only with `metrics.gc: true`.
 *
 * prom-client's collectDefaultMetrics() cannot leave one collector out, so its collectors are
 * called one by one, from the module that collectDefaultMetrics itself calls them from
 * (prom-client/lib/metrics/; prom-client is pinned to ^15, whose layout this is).
 */
import { createRequire } from 'node:module';
import type { Registry } from 'prom-client';

type Collector = (registry: Registry, config: { eventLoopMonitoringPrecision?: number }) => void;

const require = createRequire(import.meta.url);

/**
 * prom-client's default collectors (lib/defaultMetrics.js), in its order, without `gc`.
 * processResources needs process.getActiveResourcesInfo, which every supported Node.js has.
 */
const COLLECTORS = [
  'processCpuTotal',
  'processStartTime',
  'osMemoryHeap',
  'processOpenFileDescriptors',
  'processMaxFileDescriptors',
  'eventLoopLag',
  'processResources',
  'processHandles',
  'processRequests',
  'heapSizeAndUsed',
  'heapSpacesSizeAndUsed',
  'version',
] as const;

/** prom-client's default (milliseconds): event loop delay sampling interval of the libuv timer. */
const EVENT_LOOP_PRECISION_MS = 10;

function collector(name: string): Collector {
  return require(`prom-client/lib/metrics/${name}.js`) as Collector;
}

/** Registers prom-client's default metrics except the GC histogram on `registry`. */
export function registerProcessMetrics(registry: Registry): void {
  for (const name of COLLECTORS) collector(name)(registry, { eventLoopMonitoringPrecision: EVENT_LOOP_PRECISION_MS });
}

/** Adds `nodejs_gc_duration_seconds` (metrics.gc: true); once per registry. */
export function registerGcMetrics(registry: Registry): void {
  if (registry.getSingleMetric('nodejs_gc_duration_seconds') === undefined) collector('gc')(registry, {});
}
