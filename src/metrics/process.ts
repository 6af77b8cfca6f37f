/**
 * Process metrics, read when scraped: nothing runs per request or per garbage collection.
 * prom-client's collectDefaultMetrics() is not used: its GC collector observes every garbage
 * collection from JavaScript, which at /auth rates (a young-generation GC every few ms) cost
 * about 11% of /auth throughput here (bench/metrics.ts: 0.869 with it, 0.981 without). GC
 * time is therefore not exported; the event loop delay (sampled by a native timer) shows
 * pauses of any cause.
 */
import { readdirSync } from 'node:fs';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Registry } from 'prom-client';

/** Event loop delay sampling interval, in milliseconds (libuv timer; Node's default is 10). */
const LOOP_RESOLUTION_MS = 20;
const START_SECONDS = Math.round(Date.now() / 1000 - process.uptime());

function openFds(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return Number.NaN; // not Linux
  }
}

/** Registers the process metrics on `registry`; with workers, each is summed over them unless said. */
export function registerProcessMetrics(registry: Registry): void {
  const loop: IntervalHistogram = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loop.enable();
  const cpu = (name: string, help: string, pick: (u: NodeJS.CpuUsage) => number): void => {
    new Counter({
      name, help, registers: [registry],
      collect() {
        this.reset();
        this.inc(pick(process.cpuUsage()) / 1e6);
      },
    });
  };
  cpu('process_cpu_user_seconds_total', 'User CPU time spent, in seconds.', (u) => u.user);
  cpu('process_cpu_system_seconds_total', 'System CPU time spent, in seconds.', (u) => u.system);
  cpu('process_cpu_seconds_total', 'User and system CPU time spent, in seconds.', (u) => u.user + u.system);
  const gauge = (name: string, help: string, read: () => number, aggregator: 'sum' | 'max' | 'min' = 'sum'): void => {
    new Gauge({
      name, help, registers: [registry], aggregator,
      collect() {
        this.set(read());
      },
    });
  };
  gauge('process_start_time_seconds', 'Start time of the process since the Unix epoch, in seconds.', () => START_SECONDS, 'min');
  gauge('process_resident_memory_bytes', 'Resident memory size, in bytes.', () => process.memoryUsage.rss());
  gauge('process_open_fds', 'Open file descriptors.', openFds);
  gauge('nodejs_heap_size_total_bytes', 'V8 heap size, in bytes.', () => process.memoryUsage().heapTotal);
  gauge('nodejs_heap_size_used_bytes', 'V8 heap used, in bytes.', () => process.memoryUsage().heapUsed);
  gauge('nodejs_external_memory_bytes', 'Memory of C++ objects bound to JavaScript objects, in bytes.', () => process.memoryUsage().external);
  // Event loop delay since the previous scrape (then reset), in seconds: the worst worker counts.
  const lag = (name: string, help: string, read: () => number): void => gauge(name, help, () => (Number.isFinite(read()) ? read() / 1e9 : 0), 'max');
  lag('nodejs_eventloop_lag_seconds', 'Mean event loop delay since the last scrape, in seconds.', () => loop.mean);
  lag('nodejs_eventloop_lag_p50_seconds', 'Median event loop delay since the last scrape, in seconds.', () => loop.percentile(50));
  lag('nodejs_eventloop_lag_p99_seconds', '99th percentile event loop delay since the last scrape, in seconds.', () => loop.percentile(99));
  new Gauge({
    name: 'nodejs_eventloop_lag_max_seconds', help: 'Longest event loop delay since the last scrape, in seconds.', registers: [registry], aggregator: 'max',
    collect() {
      this.set(loop.max / 1e9);
      loop.reset(); // registered last: the others have read this interval already
    },
  });
  new Gauge({
    name: 'nodejs_version_info', help: 'Node.js version.', labelNames: ['version'], registers: [registry], aggregator: 'first',
    collect() {
      this.set({ version: process.version }, 1);
    },
  });
}
