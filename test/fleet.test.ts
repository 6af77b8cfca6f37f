/**
 * A fleet that survives its database: every instance holds the whole assignment table, so a
 * user assigned by one instance is answered by every other one while PostgreSQL is stopped —
 * including an instance started after the assignments (it loads the table at start).
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Agent, request } from 'undici';
import { PG_LOCAL_SKIP, freshDatabase, ownPostgres, sqlClient, stopSharedPostgres } from './helpers/postgres.js';
import { scrape, sum } from './helpers/prom.js';
import { rawConfig, spawnServe, writeConfig } from './helpers/sharder.js';
import { tempDir } from './helpers/tmp.js';
import { until } from './helpers/wait.js';

after(stopSharedPostgres);

interface HasAfter {
  after(fn: () => unknown): void;
}

interface Answer {
  status: number;
  bucket: string | undefined;
  code: string | undefined;
  ms: number;
}

const TIMEOUT_MS = 1500;

async function auth(agent: Agent, base: string, name: string): Promise<Answer> {
  const started = performance.now();
  const r = await request(`${base}/auth`, { dispatcher: agent, headers: { REMOTE_USER: name } });
  const body = await r.body.text();
  const bucket = r.headers['x-shard-bucket'];
  return {
    status: r.statusCode,
    bucket: typeof bucket === 'string' ? bucket : undefined,
    code: r.statusCode === 200 ? undefined : (JSON.parse(body) as { code: string }).code,
    ms: performance.now() - started,
  };
}

/** Runs `fn` over `items`, at most `width` at a time, answers in order. */
async function pooled<T, R>(items: readonly T[], width: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  }));
  return out;
}

async function cacheEntries(control: string): Promise<number> {
  return sum((await scrape(control)).samples, 'sharder_cache_entries', { kind: 'hub' });
}

async function cacheMisses(control: string): Promise<number> {
  return sum((await scrape(control)).samples, 'sharder_cache_misses_total', { kind: 'hub' });
}

async function serve(t: HasAfter, dir: string, url: string, i: number): Promise<{ url: string; control: string; output: () => string }> {
  const file = writeConfig(dir, rawConfig(dir, {
    database: url,
    log: { level: 'info' },
    store: { poll_ms: 500, timeout_ms: TIMEOUT_MS },
    postgres: { connection_timeout_ms: 500 },
  }), `sharder-${i}.yml`);
  const s = await spawnServe(t, file);
  await until(() => s.output().includes('"event":"table_loaded"'), 15_000, `instance ${i} loaded its table`);
  return { url: s.url, control: s.control!, output: s.output };
}

describe('fleet: PostgreSQL stopped', { skip: PG_LOCAL_SKIP }, () => {
  test('three instances, 1,000 users each asked at another instance than the one that assigned them: all answered during the outage; new users 503 fast; all recover', async (t) => {
    const server = await ownPostgres(t);
    const db = await freshDatabase(t, server);
    const dir = tempDir(t);
    const instances = await Promise.all([0, 1, 2].map((i) => serve(t, dir, db.url, i)));
    const agent = new Agent({ keepAliveTimeout: 10_000, connections: 64 });
    t.after(() => agent.close());

    const users = Array.from({ length: 1000 }, (_, i) => `learner-${i}@mooc.example`);
    const assigned = await pooled(users, 32, (name, i) => auth(agent, instances[i % 3]!.url, name));
    assert.ok(assigned.every((a) => a.status === 200), 'every first request answered 200');
    const bucketOf = new Map(users.map((u, i) => [u, assigned[i]!.bucket!]));

    // Every instance hears of the others' first assignments through the change feed.
    for (const inst of instances) await until(async () => (await cacheEntries(inst.control)) === 1000, 10_000, 'all 1,000 in every table');
    // An instance started now reads them all at start.
    const late = await serve(t, dir, db.url, 3);
    assert.match(late.output(), /"event":"table_loaded","kind":"hub","rows":1000,/);

    const missesBefore = await Promise.all([...instances, late].map((i) => cacheMisses(i.control)));
    await server.stop();

    const during = await pooled(users, 32, (name, i) => auth(agent, instances[(i + 1) % 3]!.url, name));
    const right = during.filter((a, i) => a.status === 200 && a.bucket === bucketOf.get(users[i]!)).length;
    assert.equal(right, 1000, `1,000/1,000 answered 200 with their bucket by an instance that did not assign them (${JSON.stringify(during.find((a) => a.status !== 200))})`);
    const fromLate = await pooled(users, 32, (name) => auth(agent, late.url, name));
    assert.equal(fromLate.filter((a, i) => a.status === 200 && a.bucket === bucketOf.get(users[i]!)).length, 1000, 'the instance started after the assignments answers all of them too');
    const missesAfter = await Promise.all([...instances, late].map((i) => cacheMisses(i.control)));
    assert.deepEqual(missesAfter, missesBefore, 'every answer came from memory: no cache miss');

    const fresh = Array.from({ length: 12 }, (_, i) => `newcomer-${i}`);
    const refused = await Promise.all(fresh.map((name, i) => auth(agent, [...instances, late][i % 4]!.url, name)));
    for (const a of refused) {
      assert.equal(a.status, 503);
      assert.equal(a.code, 'SHARD_ERR_STORE_UNAVAILABLE');
      assert.ok(a.ms <= TIMEOUT_MS + 250, `a new user is refused within store.timeout_ms (${a.ms.toFixed(0)} ms)`);
    }
    for (const inst of instances) {
      const r = await request(`${inst.url}/readyz`, { dispatcher: agent });
      await r.body.dump();
      assert.equal(r.statusCode, 503, '/readyz reports the outage');
    }

    await server.start();
    await until(async () => (await auth(agent, instances[0]!.url, 'first-after')).status === 200, 15_000, 'a new user is assigned again after PostgreSQL returns', 100);
    const newcomers = await pooled([...fresh, ...Array.from({ length: 288 }, (_, i) => `after-${i}`)], 32, (name, i) => auth(agent, [...instances, late][i % 4]!.url, name));
    assert.ok(newcomers.every((a) => a.status === 200), 'every new user assigned after the outage');
    const again = await pooled(users, 32, (name, i) => auth(agent, instances[(i + 2) % 3]!.url, name));
    assert.equal(again.filter((a, i) => a.status === 200 && a.bucket === bucketOf.get(users[i]!)).length, 1000, 'known users keep their bucket after the outage');

    const sql = await sqlClient(t, db.url);
    const total = Number((await sql.query("SELECT count(*) AS n FROM assignments WHERE kind = 'hub'")).rows[0].n);
    assert.equal(total, 1000 + 300 + 1, 'one row per user');
    assert.equal((await sql.query('SELECT 1 FROM assignments GROUP BY kind, name HAVING count(*) > 1')).rowCount, 0, 'no duplicates');
    const kept = (await sql.query<{ bucket: string; count: string }>("SELECT bucket, count FROM bucket_counts WHERE kind = 'hub' AND count <> 0 ORDER BY bucket")).rows.map((r) => [r.bucket, Number(r.count)]);
    const real = (await sql.query<{ bucket: string; count: string }>("SELECT bucket, count(*) AS count FROM assignments WHERE kind = 'hub' GROUP BY bucket ORDER BY bucket")).rows.map((r) => [r.bucket, Number(r.count)]);
    assert.deepEqual(kept, real, 'bucket_counts equal COUNT(*)');
    const stored = new Map((await sql.query<{ name: string; bucket: string }>("SELECT name, bucket FROM assignments WHERE kind = 'hub'")).rows.map((r) => [r.name, r.bucket]));
    for (const u of users) assert.equal(stored.get(u), bucketOf.get(u));
  });
});
