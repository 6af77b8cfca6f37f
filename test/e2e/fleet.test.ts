/**
 * A fleet that survives its database: every instance holds the whole assignment table, so a
 * user assigned by one instance is answered by every other one while PostgreSQL is stopped —
 * including an instance started after the assignments (it loads the table at start).
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { request } from 'undici';
import { auth, cacheMisses, newAgent, pooled, serveInstance, tableSize } from '../helpers/fleet.js';
import {
  assertCountsEqualRows,
  PG_LOCAL_SKIP,
  freshDatabase,
  ownPostgres,
  sqlClient,
  stopSharedPostgres,
} from '../helpers/postgres.js';
import { tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/wait.js';

after(stopSharedPostgres);

const TIMEOUT_MS = 3000;
const OVER = { store: { poll_ms: 500, timeout_ms: TIMEOUT_MS }, postgres: { connection_timeout_ms: 500 } };

describe('fleet: PostgreSQL stopped', { skip: PG_LOCAL_SKIP }, () => {
  test('three instances, 1,000 users each asked at another instance than the one that assigned them: all answered during the outage; new users 503 fast; all recover', async (t) => {
    const server = await ownPostgres(t);
    const db = await freshDatabase(t, server);
    const dir = tempDir(t);
    const instances = await Promise.all([0, 1, 2].map((i) => serveInstance(t, dir, db.url, i, OVER)));
    const agent = newAgent(t);

    const users = Array.from({ length: 1000 }, (_, i) => `learner-${i}@mooc.example`);
    const assigned = await pooled(users, 32, (name, i) => auth(agent, instances[i % 3]!.url, name));
    assert.deepEqual(
      assigned.filter((a) => a.status !== 200),
      [],
      'every first request answered 200',
    );
    const bucketOf = new Map(users.map((u, i) => [u, assigned[i]!.bucket!]));

    // Every instance hears of the others' first assignments through the change feed.
    for (const inst of instances)
      await until(async () => (await tableSize(inst)) === 1000, 10_000, 'all 1,000 in every table');
    // An instance started now reads them all at start.
    const late = await serveInstance(t, dir, db.url, 3, OVER);
    assert.match(late.output(), /"event":"table_loaded","kind":"hub","rows":1000,/);

    const missesBefore = await Promise.all([...instances, late].map((i) => cacheMisses(i)));
    await server.stop();

    const during = await pooled(users, 32, (name, i) => auth(agent, instances[(i + 1) % 3]!.url, name));
    const right = during.filter((a, i) => a.status === 200 && a.bucket === bucketOf.get(users[i]!)).length;
    assert.equal(
      right,
      1000,
      '1,000/1,000 answered 200 with their bucket by an instance that did not assign them ' +
        `(${JSON.stringify(during.find((a) => a.status !== 200))})`,
    );
    const fromLate = await pooled(users, 32, (name) => auth(agent, late.url, name));
    assert.equal(
      fromLate.filter((a, i) => a.status === 200 && a.bucket === bucketOf.get(users[i]!)).length,
      1000,
      'the instance started after the assignments answers all of them too',
    );
    const missesAfter = await Promise.all([...instances, late].map((i) => cacheMisses(i)));
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
    await until(
      async () => (await auth(agent, instances[0]!.url, 'first-after')).status === 200,
      15_000,
      'a new user is assigned again after PostgreSQL returns',
      100,
    );
    const newcomers = await pooled([...fresh, ...Array.from({ length: 288 }, (_, i) => `after-${i}`)], 32, (name, i) =>
      auth(agent, [...instances, late][i % 4]!.url, name),
    );
    assert.deepEqual(
      newcomers.filter((a) => a.status !== 200),
      [],
      'every new user assigned after the outage',
    );
    const again = await pooled(users, 32, (name, i) => auth(agent, instances[(i + 2) % 3]!.url, name));
    assert.equal(
      again.filter((a, i) => a.status === 200 && a.bucket === bucketOf.get(users[i]!)).length,
      1000,
      'known users keep their bucket after the outage',
    );

    const sql = await sqlClient(t, db.url);
    const total = Number((await sql.query("SELECT count(*) AS n FROM assignments WHERE kind = 'hub'")).rows[0].n);
    assert.equal(total, 1000 + 300 + 1, 'one row per user');
    await assertCountsEqualRows(sql);
    const stored = new Map(
      (
        await sql.query<{ name: string; bucket: string }>("SELECT name, bucket FROM assignments WHERE kind = 'hub'")
      ).rows.map((r) => [r.name, r.bucket]),
    );
    for (const u of users) assert.equal(stored.get(u), bucketOf.get(u));
  });
});
