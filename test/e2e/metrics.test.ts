/**
 * /metrics on the control listener against real sharders over real sockets: values move as
 * requests are made, objects per bucket match `sharder buckets`, the optional token, metrics
 * off, store errors, proxy-mode hub failures, and the plain-number building blocks.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { Agent, request } from 'undici';
import { AssignmentCounter, HOUR_MS, mergeRecent, type RecentView } from '../../src/metrics/assignments.js';
import { LatencyHistogram, controlEndpoint } from '../../src/metrics/http.js';
import { histogramSamples } from '../../src/metrics/registry.js';
import { silentLogger } from '../../src/log.js';
import { Sharder } from '../../src/process/sharder.js';
import { SqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/types.js';
import { freePort, get } from '../helpers/http.js';
import { byLabel, parseProm, scrape, sum } from '../helpers/prom.js';
import { rawConfig, runCli, spawnServe, startSharder, testConfig, writeConfig } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';

const METRICS_TOKEN = 'metrics-token-0123456789abcdef';
const ADMIN_TOKEN = 'admin-token-0123456789abcdef';

const auth = async (url: string, name?: string, headers: Record<string, string> = {}): Promise<number> =>
  (await get(`${url}/auth`, name === undefined ? headers : { REMOTE_USER: name, ...headers })).status;

test('a scrape reflects the requests made since the last one', async (t) => {
  const { sharder } = await startSharder(t);
  const control = sharder.controlUrl!;
  const before = await scrape(control);
  assert.equal(before.status, 200);
  assert.match(String(before.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  assert.equal(sum(before.samples, 'sharder_http_requests_total', { handler: '/auth' }), 0);
  assert.equal(sum(before.samples, 'sharder_assignments_total'), 0);
  assert.equal(sum(before.samples, 'sharder_objects'), 0);
  assert.deepEqual(
    byLabel(before.samples, 'sharder_objects', 'bucket'),
    { 'hub-0': 0, 'hub-1': 0, 'hub-2': 0 },
    'configured buckets appear at 0',
  );

  for (const n of ['ann', 'bob', 'cyd', 'dee', 'eve']) assert.equal(await auth(sharder.url, n), 200);
  for (const n of ['ann', 'bob', 'ann']) assert.equal(await auth(sharder.url, n), 200);
  assert.equal(await auth(sharder.url), 401);
  assert.equal((await get(`${sharder.url}/nowhere`)).status, 404);
  assert.equal((await get(`${sharder.url}/shard`, { REMOTE_USER: 'ann' })).status, 200);

  const after = (await scrape(control)).samples;
  assert.equal(sum(after, 'sharder_http_requests_total', { listener: 'main', handler: '/auth', code: '200' }), 8);
  assert.equal(sum(after, 'sharder_http_requests_total', { listener: 'main', handler: '/auth', code: '401' }), 1);
  assert.equal(sum(after, 'sharder_http_requests_total', { listener: 'main', handler: 'unmatched', code: '404' }), 1);
  assert.equal(sum(after, 'sharder_http_requests_total', { listener: 'main', handler: '/shard', code: '200' }), 1);
  assert.equal(
    sum(after, 'sharder_http_requests_total', { listener: 'control', handler: '/metrics', code: '200' }),
    1,
    'the first scrape is counted by the second',
  );
  assert.equal(sum(after, 'sharder_http_request_duration_seconds_count', { handler: '/auth' }), 9);
  assert.equal(sum(after, 'sharder_http_request_duration_seconds_bucket', { handler: '/auth', le: '+Inf' }), 9);
  assert.ok(sum(after, 'sharder_http_request_duration_seconds_sum', { handler: '/auth' }) > 0);
  assert.equal(sum(after, 'sharder_assignments_total'), 5);
  assert.equal(sum(after, 'sharder_objects'), 5);
  assert.deepEqual(
    byLabel(after, 'sharder_assignments_total', 'bucket'),
    byLabel(after, 'sharder_objects', 'bucket'),
    'every object was assigned here',
  );
  assert.equal(sum(after, 'sharder_cache_misses_total'), 5);
  assert.equal(sum(after, 'sharder_cache_hits_total'), 4, 'three repeats and /shard');
  assert.equal(sum(after, 'sharder_cache_entries'), 5);
  assert.equal(sum(after, 'sharder_store_operation_duration_seconds_count', { operation: 'assign' }), 5);
  assert.equal(sum(after, 'sharder_store_up'), 1);
  assert.equal(sum(after, 'sharder_info', { mode: 'auth', backend: 'sqlite' }), 1);
  assert.ok(sum(after, 'process_resident_memory_bytes') > 0, 'process metrics');
  assert.ok(after.some((s) => s.name === 'nodejs_eventloop_lag_seconds'));
  for (const s of after) assert.ok(!('name' in s.labels) && !('user' in s.labels), `no per-user label: ${s.name}`);
  // Every family is announced with HELP and TYPE, counters end in _total.
  const text = (await scrape(control)).text;
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    assert.match(text, new RegExp(`^# HELP ${m[1]} \\S`, 'm'));
    if (m[2] === 'counter') assert.match(m[1]!, /_total$/, `${m[1]} is a counter`);
    assert.match(m[1]!, /^(sharder|process|nodejs)_/);
  }
});

test('HTTP metrics are labelled handler, method and code, as JupyterHub labels its own', async (t) => {
  const { sharder } = await startSharder(t);
  assert.equal((await get(`${sharder.url}/auth`, { REMOTE_USER: 'ann' }, 'POST')).status, 200);
  assert.equal((await get(`${sharder.url}/auth`, { REMOTE_USER: 'ann' }, 'HEAD')).status, 200);
  assert.equal((await get(`${sharder.url}/auth`, { REMOTE_USER: 'ann' })).status, 200);
  // Any other method node accepts counts as `other`: the label's values stay a fixed set.
  assert.equal((await get(`${sharder.url}/auth`, { REMOTE_USER: 'ann' }, 'PROPFIND')).status, 200);
  assert.equal((await get(`${sharder.url}/auth`, {}, 'PROPFIND')).status, 401);
  const after = (await scrape(sharder.controlUrl!)).samples;
  const requests = after.filter((s) => s.name === 'sharder_http_requests_total' && s.labels.handler === '/auth');
  assert.deepEqual(requests.map((s) => [s.labels.listener, s.labels.method, s.labels.code, s.value]).sort(), [
    ['main', 'GET', '200', 1],
    ['main', 'HEAD', '200', 1],
    ['main', 'POST', '200', 1],
    ['main', 'other', '200', 1],
    ['main', 'other', '401', 1],
  ]);
  for (const s of after.filter((x) => x.name.startsWith('sharder_http_request'))) {
    assert.deepEqual(
      Object.keys(s.labels)
        .filter((l) => l !== 'le')
        .sort(),
      ['code', 'handler', 'listener', 'method'],
      `${s.name} labels`,
    );
  }
  assert.equal(
    sum(after, 'sharder_http_request_duration_seconds_count', { handler: '/auth', method: 'other', code: '401' }),
    1,
  );
  assert.equal(sum(after, 'sharder_http_request_duration_seconds_count', { handler: '/auth' }), 5);
});

/** prom-client's default metric names (collectDefaultMetrics), as CHP and JupyterHub export them. */
const PROM_CLIENT_DEFAULTS = [
  'process_cpu_user_seconds_total',
  'process_cpu_system_seconds_total',
  'process_cpu_seconds_total',
  'process_start_time_seconds',
  'process_resident_memory_bytes',
  'process_virtual_memory_bytes',
  'process_heap_bytes',
  'process_open_fds',
  'process_max_fds',
  'nodejs_eventloop_lag_seconds',
  'nodejs_eventloop_lag_min_seconds',
  'nodejs_eventloop_lag_max_seconds',
  'nodejs_eventloop_lag_mean_seconds',
  'nodejs_eventloop_lag_stddev_seconds',
  'nodejs_eventloop_lag_p50_seconds',
  'nodejs_eventloop_lag_p90_seconds',
  'nodejs_eventloop_lag_p99_seconds',
  'nodejs_active_resources',
  'nodejs_active_resources_total',
  'nodejs_active_handles',
  'nodejs_active_handles_total',
  'nodejs_active_requests',
  'nodejs_active_requests_total',
  'nodejs_heap_size_total_bytes',
  'nodejs_heap_size_used_bytes',
  'nodejs_external_memory_bytes',
  'nodejs_heap_space_size_total_bytes',
  'nodejs_heap_space_size_used_bytes',
  'nodejs_heap_space_size_available_bytes',
  'nodejs_version_info',
];

test("process metrics are prom-client's defaults, without the GC histogram unless metrics.gc", async (t) => {
  const { sharder } = await startSharder(t);
  const { text, samples } = await scrape(sharder.controlUrl!);
  const families = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
  for (const name of PROM_CLIENT_DEFAULTS) assert.ok(families.has(name), `${name} is exported`);
  assert.equal(families.has('nodejs_gc_duration_seconds'), false, 'no GC observer by default');
  assert.match(
    text,
    /^# HELP nodejs_eventloop_lag_p90_seconds The 90th percentile of the recorded event loop delays\.$/m,
  );
  assert.ok(sum(samples, 'process_max_fds') > 0);
  assert.ok(sum(samples, 'nodejs_heap_space_size_total_bytes', { space: 'old' }) > 0, 'heap space sizes by space');
  assert.equal(
    sum(samples, 'nodejs_version_info', { version: process.version, major: process.versions.node.split('.')[0]! }),
    1,
  );

  // metrics.gc: true, in a process of its own (the GC observer, once on, is the process's).
  const dir = tempDir(t);
  const file = writeConfig(dir, rawConfig(dir, { metrics: { gc: true } }));
  const { control } = await spawnServe(t, file);
  const withGc = await scrape(control!);
  assert.match(withGc.text, /^# TYPE nodejs_gc_duration_seconds histogram$/m);
});

test('objects per bucket in a scrape after a load run match `sharder buckets`', async (t) => {
  const dir = tempDir(t);
  const file = writeConfig(
    dir,
    rawConfig(dir, {
      kinds: {
        hub: { buckets: [{ name: 'hub-0', weight: 2 }, { name: 'hub-1' }, { name: 'hub-2', state: 'draining' }] },
      },
    }),
  );
  const { url, control } = await spawnServe(t, file);
  const agent = new Agent({ connections: 32 });
  t.after(() => agent.close());
  const names = Array.from({ length: 400 }, (_, i) => `load-${i}`);
  // Every name twice, concurrently: first assignments racing with hits.
  await Promise.all(
    names
      .flatMap((n) => [n, n])
      .map(async (n) => {
        const r = await request(`${url}/auth`, { headers: { REMOTE_USER: n }, dispatcher: agent });
        await r.body.dump();
        assert.equal(r.statusCode, 200);
      }),
  );
  const samples = (await scrape(control!)).samples;
  const cli = await runCli(['buckets', '--config', file, '--json']);
  assert.equal(cli.code, 0, cli.stderr);
  const view = JSON.parse(cli.stdout) as { buckets: { name: string; count: number }[] };
  assert.deepEqual(
    byLabel(samples, 'sharder_objects', 'bucket'),
    Object.fromEntries(view.buckets.map((b) => [b.name, b.count])),
  );
  assert.equal(sum(samples, 'sharder_objects'), 400);
  assert.equal(sum(samples, 'sharder_objects', { bucket: 'hub-2' }), 0, 'draining bucket got nothing');
  assert.equal(sum(samples, 'sharder_http_requests_total', { handler: '/auth', code: '200' }), 800);
  assert.equal(sum(samples, 'sharder_bucket_weight', { bucket: 'hub-0' }), 2);
  assert.equal(sum(samples, 'sharder_bucket_state', { bucket: 'hub-2', state: 'draining' }), 1);
  assert.equal(sum(samples, 'sharder_bucket_state', { bucket: 'hub-2', state: 'active' }), 0);
});

test('metrics.token: /metrics needs it as a bearer token; admin tokens do not open it', async (t) => {
  const { sharder } = await startSharder(t, { metrics: { token: METRICS_TOKEN }, admin: { token: ADMIN_TOKEN } });
  const control = sharder.controlUrl!;
  const none = await scrape(control);
  assert.equal(none.status, 401);
  assert.match(String(none.headers['www-authenticate']), /^Bearer/);
  assert.equal(JSON.parse(none.text).code, 'SHARD_ERR_UNAUTHORIZED');
  assert.equal((await scrape(control, `${METRICS_TOKEN}x`)).status, 401);
  assert.equal((await scrape(control, ADMIN_TOKEN)).status, 401);
  const ok = await scrape(control, METRICS_TOKEN);
  assert.equal(ok.status, 200);
  assert.equal(sum(ok.samples, 'sharder_http_requests_total', { handler: '/metrics', code: '401' }), 3);
  assert.doesNotMatch(ok.text, new RegExp(METRICS_TOKEN));
});

test('metrics.listen: a listener of its own that serves /metrics alone, under the same token', async (t) => {
  const { sharder } = await startSharder(t, {
    metrics: { listen: '127.0.0.1:0', token: METRICS_TOKEN },
    admin: { token: ADMIN_TOKEN },
  });
  const url = sharder.metricsUrl!;
  assert.ok(url !== null && url !== sharder.controlUrl);
  assert.equal((await get(`${url}/metrics`)).status, 401);
  assert.equal(
    (await get(`${url}/metrics`, { Authorization: `Bearer ${ADMIN_TOKEN}` })).status,
    401,
    'an admin token does not open it',
  );
  const ok = await scrape(url, METRICS_TOKEN);
  assert.equal(ok.status, 200);
  assert.equal(sum(ok.samples, 'sharder_info'), 1);
  // Nothing else is there: no status page, and no admin API even with an admin token.
  assert.equal((await get(`${url}/status`)).status, 404);
  assert.equal((await get(`${url}/healthz`)).status, 404);
  assert.equal((await get(`${url}/api/buckets`, { Authorization: `Bearer ${ADMIN_TOKEN}` })).status, 401);
  // The control listener keeps its /metrics and its admin API.
  assert.equal((await scrape(sharder.controlUrl!, METRICS_TOKEN)).status, 200);
  assert.equal(
    (await get(`${sharder.controlUrl}/api/buckets`, { Authorization: `Bearer ${ADMIN_TOKEN}` })).status,
    200,
  );
});

test('metrics.listen: on its own port while control_listen is off', async (t) => {
  const { sharder } = await startSharder(t, { control_listen: 'off', metrics: { listen: '127.0.0.1:0' } });
  assert.equal(sharder.controlUrl, null);
  const s = await scrape(sharder.metricsUrl!);
  assert.equal(s.status, 200);
  assert.ok(s.samples.some((x) => x.name === 'nodejs_eventloop_lag_p90_seconds'));
});

test('metrics.enabled: false answers 404 on /metrics and still serves /auth and /status', async (t) => {
  const { sharder } = await startSharder(t, { metrics: { enabled: false } });
  assert.equal(sharder.metrics, null);
  const r = await scrape(sharder.controlUrl!);
  assert.equal(r.status, 404);
  assert.match(JSON.parse(r.text).message, /metrics\.enabled: false/);
  assert.equal(await auth(sharder.url, 'x'), 200);
  assert.equal((await get(`${sharder.controlUrl}/status`)).status, 200);
});

test('store failures are counted by operation and code; the scrape still answers', async (t) => {
  const { sharder } = await startSharder(t);
  assert.equal(await auth(sharder.url, 'before'), 200);
  // Close the store under the running server: every store call now fails.
  await (sharder.store as unknown as { close(): Promise<void> }).close();
  assert.equal(await auth(sharder.url, 'after'), 503);
  assert.equal(await auth(sharder.url, 'before'), 200, 'known users are answered from memory');
  const s = (await scrape(sharder.controlUrl!)).samples;
  assert.ok(sum(s, 'sharder_store_errors_total', { operation: 'assign' }) >= 1);
  assert.equal(sum(s, 'sharder_http_requests_total', { handler: '/auth', code: '503' }), 1);
  assert.equal(sum(s, 'sharder_store_up'), 0);
  assert.equal(s.filter((x) => x.name === 'sharder_objects').length, 0, 'no made-up zeros while the store is down');
});

test('store timeouts are counted', async (t) => {
  // A real SQLite store whose first assignments answer late (SQLite itself blocks the thread
  // while it waits for a lock, so it cannot be made slow from outside without stopping the
  // timer that measures it).
  const dir = tempDir(t);
  const real = SqliteStore.open({ path: join(dir, 'slow.db'), busyTimeoutMs: 1000 });
  const slow = new Proxy(real, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown;
      if (prop === 'assign')
        return (...args: Parameters<Store['assign']>) =>
          new Promise((r) => setTimeout(r, 400)).then(() => target.assign(...args));
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  const config = testConfig(dir, { store: { timeout_ms: 100, poll_ms: 50 } });
  const sharder = await Sharder.start(config, { log: silentLogger(), store: slow });
  t.after(async () => {
    await sharder.stop(1000);
    await real.close();
  });
  assert.equal(await auth(sharder.url, 'slow'), 503);
  const s = (await scrape(sharder.controlUrl!)).samples;
  assert.equal(sum(s, 'sharder_store_timeouts_total', { kind: 'hub' }), 1);
  assert.equal(sum(s, 'sharder_http_requests_total', { handler: '/auth', code: '503' }), 1);
});

test('proxy mode: upstream errors by hub', async (t) => {
  // A port nothing listens on: connections are refused.
  const dead = await freePort();
  const { sharder } = await startSharder(t, {
    mode: 'proxy',
    kinds: { hub: { buckets: [{ name: 'gone', upstream: `http://127.0.0.1:${dead}` }] } },
  });
  const r = await get(`${sharder.url}/hub/home`, { REMOTE_USER: 'pat' });
  assert.equal(r.status, 502);
  assert.match(String(r.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  const s = (await scrape(sharder.controlUrl!)).samples;
  assert.equal(
    sum(s, 'sharder_proxy_upstream_errors_total', { kind: 'hub', bucket: 'gone', code: 'SHARD_ERR_UPSTREAM_DOWN' }),
    1,
  );
  assert.equal(sum(s, 'sharder_proxy_requests_total'), 1);
  assert.equal(sum(s, 'sharder_info', { mode: 'proxy' }), 1);
});

test('latency histogram: plain counts become cumulative buckets', () => {
  const h = new LatencyHistogram([0.001, 0.01]);
  for (const v of [0.0005, 0.001, 0.005, 0.5]) h.observe(v);
  const s = histogramSamples('x_seconds', { endpoint: '/auth' }, h);
  assert.deepEqual(
    s.map((x) => [x.metricName, x.labels.le, x.value]),
    [
      ['x_seconds_bucket', 0.001, 2],
      ['x_seconds_bucket', 0.01, 3],
      ['x_seconds_bucket', '+Inf', 4],
      ['x_seconds_sum', undefined, 0.5065],
      ['x_seconds_count', undefined, 4],
    ],
  );
  assert.equal(controlEndpoint('/api/objects/hub/x'), '/api');
  assert.equal(controlEndpoint('/metrics'), '/metrics');
  assert.equal(controlEndpoint('/anything-else'), 'unmatched');
});

test('new assignments in the last hour: a sliding window of minutes', () => {
  let now = Date.UTC(2024, 0, 1, 12, 0, 0);
  const c = new AssignmentCounter(() => now);
  c.record('hub', 'a');
  now += 30 * 60_000;
  c.record('hub', 'a');
  c.record('hub', 'b');
  assert.deepEqual(c.recent().counts, { hub: { a: 2, b: 1 } });
  assert.equal(c.recent().since, Date.UTC(2024, 0, 1, 12, 0, 0), 'complete only since start');
  now += 31 * 60_000; // the first one is now 61 minutes old
  assert.deepEqual(c.recent().counts, { hub: { a: 1, b: 1 } });
  assert.equal(c.recent().since, now - HOUR_MS);
  now += 60 * 60_000;
  c.record('hub', 'a'); // reuses a slot last written an hour ago
  assert.deepEqual(c.recent().counts, { hub: { a: 1, b: 0 } });
  assert.deepEqual(
    [...c.totals()],
    [
      ['hub', 'a', 3],
      ['hub', 'b', 1],
    ],
  );
  const merged = mergeRecent([
    { since: 5, counts: { hub: { a: 1 } } },
    { since: 9, counts: { hub: { a: 2, b: 1 }, home: { h: 4 } } },
  ]);
  assert.deepEqual(merged, { since: 9, counts: { hub: { a: 3, b: 1 }, home: { h: 4 } } });
});

test('merged recent counts: kinds and buckets named like Object.prototype members are counted, nothing is polluted', () => {
  // JSON.parse, as the views arrive over IPC from the workers.
  const view = (): RecentView =>
    JSON.parse('{"since": 1, "counts": {"constructor": {"toString": 2, "valueOf": 1}, "hub": {"hasOwnProperty": 4}}}');
  const merged = mergeRecent([view(), view()]);
  assert.deepEqual(JSON.parse(JSON.stringify(merged)), {
    since: 1,
    counts: { constructor: { toString: 4, valueOf: 2 }, hub: { hasOwnProperty: 8 } },
  });
  assert.equal(typeof Object.toString, 'function');
  assert.equal(Object.hasOwn(Object, 'toString'), false, 'the Object constructor was not written to');
});

test('the text parser used here rejects malformed lines', () => {
  assert.throws(() => parseProm('x{a="1" 2'));
  assert.deepEqual(parseProm('# HELP x y\nx{a="q\\"z"} 2\n'), [{ name: 'x', labels: { a: 'q"z' }, value: 2 }]);
});
