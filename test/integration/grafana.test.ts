/**
 * deploy/grafana-dashboard.json: valid, importable shape, and every metric it queries exists
 * in a real scrape of a sharder that has done the things the panels show.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { freePort, get } from '../helpers/http.js';
import { scrape } from '../helpers/prom.js';
import { ROOT, startSharder } from '../helpers/sharder.js';

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { type: string; uid: string };
  targets?: { expr: string; refId: string }[];
}

const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana-dashboard.json'), 'utf8')) as {
  title: string;
  uid: string;
  panels: Panel[];
  templating: { list: { name: string }[] };
};

/** PromQL functions, keywords and label names that look like identifiers in an expression. */
const NOT_METRICS = new Set([
  'sum',
  'max',
  'min',
  'by',
  'rate',
  'histogram_quantile',
  'or',
  'count',
  'on',
  'ignoring',
  'le',
  'kind',
  'bucket',
  'state',
  'operation',
  'code',
  'handler',
  'method',
  'listener',
  'instance',
  'job',
]);

function metricNames(expr: string): string[] {
  const bare = expr.replace(/"[^"]*"/g, '""').replace(/\[[^\]]*\]/g, '');
  return [...bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)]
    .map((m) => m[0])
    .filter((w) => !NOT_METRICS.has(w) && !w.startsWith('$'));
}

test('the Grafana dashboard is well formed', () => {
  assert.equal(dashboard.uid, 'sharder-overview');
  assert.deepEqual(
    dashboard.templating.list.map((v) => v.name),
    ['datasource', 'job'],
  );
  const ids = dashboard.panels.map((p) => p.id);
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
  const titles = dashboard.panels.map((p) => p.title);
  for (const wanted of [
    'Objects per bucket',
    'New assignments per minute',
    '/auth latency',
    'Requests by handler and code',
    'Cache hit ratio',
    'Store latency p99 by operation',
    'Store errors and timeouts',
    'Upstream errors by hub',
  ]) {
    assert.ok(titles.includes(wanted), `a panel "${wanted}"`);
  }
  for (const p of dashboard.panels) {
    assert.ok(p.gridPos.x + p.gridPos.w <= 24, `${p.title} fits the 24-column grid`);
    if (p.type === 'row') continue;
    assert.deepEqual(p.datasource, { type: 'prometheus', uid: '${datasource}' });
    assert.ok((p.targets ?? []).length > 0, `${p.title} queries something`);
    for (const t of p.targets!) assert.match(t.expr, /job=~"\$job"/, `${p.title}: ${t.expr} follows the job variable`);
  }
});

test('every metric the dashboard queries is in a real scrape', async (t) => {
  // Proxy mode with one hub that refuses connections, so that proxy metrics have samples too.
  const dead = await freePort();
  const { sharder } = await startSharder(t, {
    mode: 'proxy',
    kinds: {
      hub: {
        buckets: [
          { name: 'hub-0', upstream: `http://127.0.0.1:${dead}` },
          { name: 'hub-1', upstream: `http://127.0.0.1:${dead}`, state: 'draining' },
        ],
      },
    },
  });
  assert.equal((await get(`${sharder.url}/_sharder/auth`, { REMOTE_USER: 'ann' })).status, 200);
  assert.equal((await get(`${sharder.url}/_sharder/auth`, { REMOTE_USER: 'ann' })).status, 200);
  assert.equal((await get(`${sharder.url}/user/ann/`, { REMOTE_USER: 'ann' })).status, 502);
  const { text, samples } = await scrape(sharder.controlUrl!);
  const sampled = new Set(samples.map((s) => s.name));
  // Families announced but without a sample yet (errors that did not happen) count as present.
  const families = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
  const declared = (n: string): boolean => families.has(n) || families.has(n.replace(/_(bucket|sum|count)$/, ''));
  const queried = new Set(dashboard.panels.flatMap((p) => (p.targets ?? []).flatMap((x) => metricNames(x.expr))));
  assert.ok(queried.size >= 15, [...queried].join(' '));
  for (const name of queried)
    assert.ok(sampled.has(name) || declared(name), `the dashboard queries ${name}, which a scrape does not have`);
  // Every label a query selects on or groups by is one that the metrics it queries carry
  // (job and instance are Prometheus' own, le is a histogram's): a renamed label fails here.
  const labelsOf = new Map<string, Set<string>>();
  for (const smp of samples)
    for (const l of Object.keys(smp.labels)) labelsOf.set(smp.name, (labelsOf.get(smp.name) ?? new Set()).add(l));
  for (const p of dashboard.panels) {
    for (const x of p.targets ?? []) {
      const names = metricNames(x.expr);
      if (!names.every((n) => labelsOf.has(n))) continue; // no sample to read labels from (errors that did not happen)
      const carried = new Set(['job', 'instance', 'le', ...names.flatMap((n) => [...(labelsOf.get(n) ?? [])])]);
      const used = [
        ...[...x.expr.matchAll(/\{([^}]*)\}/g)].flatMap((m) =>
          [...m[1]!.matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]!),
        ),
        ...[...x.expr.matchAll(/\bby \(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',').map((l) => l.trim())),
      ];
      for (const l of used)
        assert.ok(carried.has(l), `${p.title}: ${x.expr} uses the label ${l}, which ${names.join(', ')} does not have`);
    }
  }
  const unsampled = [...queried].filter((n) => !sampled.has(n));
  // Only the error counters may be empty in this run.
  assert.deepEqual(unsampled.sort(), ['sharder_store_errors_total', 'sharder_store_timeouts_total']);
});
