/**
 * workers: 2 — one scrape of /metrics (and one load of /status) reports the whole process
 * group, whichever worker the connection reaches: the primary gathers every worker's numbers.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Agent, request } from 'undici';
import { byLabel, scrape, sum, type Sample } from '../helpers/prom.js';
import { rawConfig, spawnServe, writeConfig } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';

test('workers: 2 — every scrape reports both workers, added up', async (t) => {
  const dir = tempDir(t);
  const file = writeConfig(dir, rawConfig(dir, { workers: 2 }));
  const { url, control, logged } = await spawnServe(t, file);
  await logged(/"event":"cluster_started"/);
  assert.ok(control);

  // Many connections, so that both workers answer some of them.
  const agent = new Agent({ connections: 16, pipelining: 0 });
  t.after(() => agent.close());
  const names = Array.from({ length: 150 }, (_, i) => `c-${i}`);
  const requests = names.flatMap((n) => [n, n]);
  await Promise.all(
    requests.map(async (n) => {
      const r = await request(`${url}/auth`, { headers: { REMOTE_USER: n }, dispatcher: agent });
      await r.body.dump();
      assert.equal(r.statusCode, 200);
    }),
  );

  // New connections each time: the cluster hands them to the workers in turn.
  for (let k = 0; k < 4; k++) {
    const s: Sample[] = (await scrape(control)).samples;
    assert.equal(sum(s, 'sharder_workers'), 2, 'both workers answered');
    assert.equal(sum(s, 'sharder_workers_configured'), 2);
    assert.equal(
      sum(s, 'sharder_http_requests_total', { handler: '/auth', code: '200' }),
      requests.length,
      `scrape ${k}: all /auth answers, both workers'`,
    );
    assert.equal(
      sum(s, 'sharder_http_requests_total', { handler: '/metrics', code: '200' }),
      k,
      `scrape ${k} sees every earlier scrape`,
    );
    assert.equal(sum(s, 'sharder_http_request_duration_seconds_count', { handler: '/auth' }), requests.length);
    assert.equal(sum(s, 'sharder_assignments_total'), names.length);
    // Read from the shared store by each worker: reported once, not added up.
    assert.equal(sum(s, 'sharder_objects'), names.length);
    assert.deepEqual(Object.keys(byLabel(s, 'sharder_objects', 'bucket')).sort(), ['hub-0', 'hub-1', 'hub-2']);
    assert.equal(sum(s, 'sharder_bucket_weight', { bucket: 'hub-1' }), 1);
    assert.equal(sum(s, 'sharder_cache_hits_total') + sum(s, 'sharder_cache_misses_total'), requests.length);
    assert.ok(sum(s, 'sharder_cache_entries') >= names.length, 'each worker caches what it answered');
    assert.equal(sum(s, 'sharder_worker_restarts_total'), 0);
    assert.ok(sum(s, 'process_cpu_seconds_total') > 0);
  }

  const page = await request(`${control}/status`);
  const html = await page.body.text();
  assert.equal(page.statusCode, 200);
  assert.match(html, /workers <b>2<\/b>/);
  const recent = /data-kind="hub">\s*<h2>hub <small>([\d,]+) objects · ([\d,]+) new in the last hour/.exec(html);
  assert.ok(recent, html.slice(0, 400));
  assert.equal(Number(recent[1]!.replaceAll(',', '')), names.length);
  assert.equal(Number(recent[2]!.replaceAll(',', '')), names.length, 'new assignments of both workers');
});
