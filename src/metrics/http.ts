/**
 * Request counting and timing for the listeners, cheap enough for /auth (which answers known
 * users from memory in a few microseconds): plain numbers in typed arrays, one pre-made meter
 * per endpoint, nothing allocated per request. The registry (registry.ts) turns them into
 * Prometheus samples when scraped.
 *
 * Timing uses performance.now() (a double, no allocation; ~50 ns a call on the benchmark
 * machine, like process.hrtime.bigint() but without the BigInt). A request is timed from its
 * handler starting to its answer being written: the sharder's own share of the latency,
 * including any wait for the store, but not node's parsing of the request.
 */

/** Upper bounds of the latency buckets, in seconds: from a cache hit (~10 µs) to the store timeout. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** HTTP status codes are three digits. */
const STATUSES = 600;

/**
 * The `method` label's values: the methods a client of these endpoints sends, and `other` for
 * the rest (node's parser accepts some thirty more), so that the label stays bounded.
 */
export const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'other'] as const;

function methodIndex(method: string | undefined): number {
  switch (method) {
    case 'GET':
      return 0;
    case 'HEAD':
      return 1;
    case 'POST':
      return 2;
    case 'PUT':
      return 3;
    case 'DELETE':
      return 4;
    case 'PATCH':
      return 5;
    case 'OPTIONS':
      return 6;
    default:
      return 7;
  }
}

/** A histogram as plain numbers: per-bucket (non-cumulative) counts, sum and count. */
export class LatencyHistogram {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly bounds: readonly number[] = LATENCY_BUCKETS) {
    // One more slot for observations above the last bound (+Inf).
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(seconds: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && seconds > b[i]!) i++;
    this.counts[i]!++;
    this.sum += seconds;
    this.count++;
  }
}

/**
 * One endpoint (the `handler` label) of one listener: responses by method and status code, and
 * optionally their latency by the same two, as JupyterHub labels its request metrics.
 */
export class EndpointMeter {
  /** Responses by method (index into METHODS) × STATUSES + status code, as exact integers up to 2^53. */
  private readonly counts = new Float64Array(METHODS.length * STATUSES);
  /** Latency by the same index, made on the first response of each method and status. */
  private readonly latency: Map<number, LatencyHistogram> | null;

  constructor(
    readonly listener: string,
    readonly endpoint: string,
    timed: boolean,
  ) {
    this.latency = timed ? new Map() : null;
  }

  /** Counts a response to `method`; `start` is from `HttpMeter.now()` (0 when not timed). */
  done(method: string | undefined, status: number, start: number): void {
    const i = methodIndex(method) * STATUSES + (status >= 0 && status < STATUSES ? status : 0);
    this.counts[i]!++;
    if (this.latency !== null && start !== 0) {
      let h = this.latency.get(i);
      if (h === undefined) this.latency.set(i, (h = new LatencyHistogram()));
      h.observe((performance.now() - start) / 1000);
    }
  }

  get timed(): boolean {
    return this.latency !== null;
  }

  /** Every method and status code answered so far, with its count. */
  *responses(): Generator<{ method: string; code: number; value: number }> {
    for (let i = 0; i < this.counts.length; i++) {
      if (this.counts[i]! > 0)
        yield { method: METHODS[Math.floor(i / STATUSES)]!, code: i % STATUSES, value: this.counts[i]! };
    }
  }

  /** The latency histograms, by method and status code. */
  *latencies(): Generator<{ method: string; code: number; histogram: LatencyHistogram }> {
    if (this.latency === null) return;
    for (const [i, histogram] of [...this.latency].sort((x, y) => x[0] - y[0]))
      yield { method: METHODS[Math.floor(i / STATUSES)]!, code: i % STATUSES, histogram };
  }
}

/** What the listeners call: a clock and one meter per endpoint. */
export interface HttpMeter {
  /** A start time for `EndpointMeter.done`; 0 when requests are not timed. */
  now(): number;
  readonly auth: EndpointMeter;
  readonly shard: EndpointMeter;
  readonly healthz: EndpointMeter;
  readonly readyz: EndpointMeter;
  /** Main listener paths that match no route. */
  readonly unmatched: EndpointMeter;
  /** Control listener: a meter per endpoint label (`/metrics`, `/status`, `/api`, `unmatched`). */
  control(path: string): EndpointMeter;
}

export const MAIN_LISTENER = 'main';
export const CONTROL_LISTENER = 'control';

/** Which endpoint label a control listener path counts under: a fixed set, whatever the path. */
export function controlEndpoint(path: string): string {
  if (path === '/metrics' || path === '/status') return path;
  if (path === '/api' || path.startsWith('/api/')) return '/api';
  return 'unmatched';
}

export class RecordingMeter implements HttpMeter {
  readonly auth = new EndpointMeter(MAIN_LISTENER, '/auth', true);
  readonly shard = new EndpointMeter(MAIN_LISTENER, '/shard', true);
  readonly healthz = new EndpointMeter(MAIN_LISTENER, '/healthz', false);
  readonly readyz = new EndpointMeter(MAIN_LISTENER, '/readyz', true);
  readonly unmatched = new EndpointMeter(MAIN_LISTENER, 'unmatched', false);
  private readonly controls = new Map<string, EndpointMeter>(
    ['/metrics', '/status', '/api', 'unmatched'].map((e) => [
      e,
      new EndpointMeter(CONTROL_LISTENER, e, e !== 'unmatched'),
    ]),
  );

  now(): number {
    return performance.now();
  }

  control(path: string): EndpointMeter {
    return this.controls.get(controlEndpoint(path))!;
  }

  /** Every meter, for export. */
  all(): EndpointMeter[] {
    return [this.auth, this.shard, this.healthz, this.readyz, this.unmatched, ...this.controls.values()];
  }
}

/** metrics.enabled: false: nothing counted, no clock read. */
class IdleMeter extends EndpointMeter {
  override done(): void {}
}

const IDLE = new IdleMeter('', '', false);

export const NO_METER: HttpMeter = {
  now: () => 0,
  auth: IDLE,
  shard: IDLE,
  healthz: IDLE,
  readyz: IDLE,
  unmatched: IDLE,
  control: () => IDLE,
};
