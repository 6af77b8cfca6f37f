/**
 * Graceful stop and live reload under load, on a spawned `sharder serve`:
 * - SIGTERM while first requests wait for the SQLite write lock (held by another process):
 *   every one of them is answered 200 and stored, and the process exits 0 in bounded time;
 * - SIGTERM under a steady load: exit 0, no 5xx;
 * - SIGHUP five times under a steady load (one process, then workers: 2): the buckets change
 *   and not one request fails.
 */
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { once } from 'node:events';
import { join } from 'node:path';
import { test } from 'node:test';
import { Agent, request } from 'undici';
import Database from 'better-sqlite3';
import { rawConfig, spawnServe, writeConfig } from '../helpers/sharder.js';
import { holdLock } from '../helpers/lock.js';
import { tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/wait.js';

/** How long a stop may take: the grace for requests in flight plus start-up noise. */
const EXIT_BOUND_MS = 15_000;

/** Load from `workers` loops until stop(); counts answers by status and transport errors. */
function load(url: string, agent: Agent, names: (i: number) => string, workers = 16) {
  const statuses = new Map<number, number>();
  const errors: string[] = [];
  let stop = false;
  let i = 0;
  const loops = Array.from({ length: workers }, async () => {
    while (!stop) {
      try {
        const r = await request(`${url}/auth`, { dispatcher: agent, headers: { REMOTE_USER: names(i++) } });
        await r.body.dump();
        statuses.set(r.statusCode, (statuses.get(r.statusCode) ?? 0) + 1);
      } catch (err) {
        errors.push((err as Error).message);
        if (errors.length > 1000) return;
      }
    }
  });
  return {
    statuses,
    errors,
    sent: () => i,
    /** Resolves once `n` more requests were answered 200 (the load ran under what is in force now). */
    answered(n: number): Promise<number> {
      const at = statuses.get(200) ?? 0;
      return until(() => (statuses.get(200) ?? 0) >= at + n || errors.length > 0, 10_000, `${n} more answers`);
    },
    async stop(): Promise<void> {
      stop = true;
      await Promise.all(loops);
    },
  };
}

test('SIGTERM: requests in flight (waiting for the write lock) are all answered and stored; exit 0', async (t) => {
  const dir = tempDir(t);
  const file = writeConfig(
    dir,
    rawConfig(dir, { log: { level: 'info' }, store: { poll_ms: 50, busy_timeout_ms: 10_000 } }),
  );
  const server = await spawnServe(t, file);
  const agent = new Agent({ connections: 64 });
  t.after(() => agent.destroy());
  await holdLock(join(dir, 'sharder.db'), 1500);
  const names = Array.from({ length: 50 }, (_, i) => `inflight-${i}`);
  // undici announces each request once its headers are written to the server's socket.
  let written = 0;
  const onWritten = (): void => void written++;
  subscribe('undici:client:sendHeaders', onWritten);
  t.after(() => unsubscribe('undici:client:sendHeaders', onWritten));
  const answers = names.map((name) =>
    request(`${server.url}/auth`, { dispatcher: agent, headers: { REMOTE_USER: name } }).then(async (r) => {
      await r.body.dump();
      return { status: r.statusCode, bucket: String(r.headers['x-shard-bucket']) };
    }),
  );
  await until(() => written === names.length, 10_000, 'all 50 requests sent to the server');
  // A health check sent after them is answered only once the server has read what came before:
  // all 50 are in the server now, waiting for the lock.
  const health = await request(`${server.url}/healthz`);
  await health.body.dump();
  assert.equal(health.statusCode, 200);
  const stopped = Date.now();
  server.child.kill('SIGTERM');
  const got = await Promise.all(answers);
  const [code] = (await once(server.child, 'exit')) as [number | null];
  assert.equal(code, 0, server.output());
  assert.ok(Date.now() - stopped < EXIT_BOUND_MS, 'stopped in bounded time');
  assert.deepEqual(
    got.map((g) => g.status),
    names.map(() => 200),
  );
  const db = new Database(join(dir, 'sharder.db'), { readonly: true });
  t.after(() => db.close());
  const rows = new Map(
    (db.prepare('SELECT name, bucket FROM assignments').all() as { name: string; bucket: string }[]).map((r) => [
      r.name,
      r.bucket,
    ]),
  );
  names.forEach((n, i) => assert.equal(rows.get(n), got[i]!.bucket, n));
});

test('SIGTERM under steady load: exit 0 within the bound, no 5xx', async (t) => {
  const dir = tempDir(t);
  const file = writeConfig(dir, rawConfig(dir, { log: { level: 'info' } }));
  const server = await spawnServe(t, file);
  const agent = new Agent({ connections: 32 });
  t.after(() => agent.destroy());
  const l = load(server.url, agent, (i) => `steady-${i % 500}`);
  await l.answered(200);
  const stopped = Date.now();
  server.child.kill('SIGTERM');
  const [code] = (await once(server.child, 'exit')) as [number | null];
  const took = Date.now() - stopped;
  await l.stop();
  assert.equal(code, 0);
  assert.ok(took < EXIT_BOUND_MS, `exit took ${took} ms`);
  const fivexx = [...l.statuses].filter(([s]) => s >= 500);
  assert.deepEqual(fivexx, [], 'no request answered 5xx while stopping');
  assert.ok((l.statuses.get(200) ?? 0) > 100, 'the load ran');
  // After the stop the port is closed: later requests are refused, never half-answered.
  for (const e of l.errors) assert.match(e, /ECONNREFUSED|other side closed|ECONNRESET|socket/i);
  t.diagnostic(
    `SIGTERM under load: ${l.sent()} requests, ${l.statuses.get(200)} answered 200, ${l.errors.length} refused ` +
      `after close, exit 0 in ${took} ms`,
  );
});

for (const workers of [1, 2]) {
  test(`SIGHUP five times under load (workers: ${workers}): the buckets change, zero failed requests`, async (t) => {
    const dir = tempDir(t);
    const hubs = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ name: `hub-${i}`, upstream: `http://10.0.0.${10 + i}:8000` }));
    const base = (n: number) =>
      rawConfig(dir, { log: { level: 'info' }, workers, kinds: { hub: { buckets: hubs(n) } } });
    const file = writeConfig(dir, base(2));
    const server = await spawnServe(t, file);
    if (workers > 1) await server.logged(/"event":"cluster_started"/);
    const agent = new Agent({ connections: 32 });
    t.after(() => agent.destroy());
    const l = load(server.url, agent, (i) => `reload-${i}`);
    for (let n = 3; n <= 7; n++) {
      await l.answered(100);
      writeConfig(dir, base(n));
      server.child.kill('SIGHUP');
      await server.logged(/"event":"reloaded"/, (n - 2) * workers);
    }
    await l.answered(100);
    await l.stop();
    assert.equal(
      (server.output().match(/"event":"reloaded"/g) ?? []).length,
      5 * workers,
      'every worker reloaded five times',
    );
    assert.deepEqual(l.errors, []);
    assert.deepEqual([...l.statuses.keys()], [200], `statuses: ${JSON.stringify([...l.statuses])}`);
    // The last configuration is in force: a new name can land on hub-6, which only it has.
    const seen = new Set<string>();
    for (let i = 0; i < 60 && !seen.has('hub-6'); i++) {
      const r = await request(`${server.url}/auth`, { dispatcher: agent, headers: { REMOTE_USER: `after-${i}` } });
      await r.body.dump();
      seen.add(String(r.headers['x-shard-bucket']));
    }
    assert.ok(seen.has('hub-6'), `new names go to the buckets added by reload: ${[...seen].join(', ')}`);
    t.diagnostic(`SIGHUP x5 (workers: ${workers}): ${l.sent()} requests, all 200, 0 errors`);
    server.child.kill('SIGTERM');
    const [code] = (await once(server.child, 'exit')) as [number | null];
    assert.equal(code, 0);
  });
}
