/**
 * The operations scenarios of ops.test.ts and transfer.test.ts (helpers/ops-suite.ts) on a
 * real PostgreSQL: migrations of a bucket, export → delete the database → import byte for byte,
 * conflicts, doctor and repair, audit. Each test gets a database of its own on a throwaway
 * server (or SHARDER_TEST_DATABASE_URL's); a declared skip without PostgreSQL. Then the admin
 * CLI against PostgreSQL while two `sharder serve` instances answer /auth.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { Agent, request } from 'undici';
import { validateConfig } from '../../src/config/validate.js';
import { resolvePostgres } from '../../src/store/postgres/connect.js';
import { PostgresStore } from '../../src/store/postgres/index.js';
import { runOpsSuite, runSqliteAgreement, runTransferSuite } from '../helpers/ops-suite.js';
import type { OpsBackend } from '../helpers/ops.js';
import { freshDatabase, PG_SKIP, sqlClient, stopSharedPostgres } from '../helpers/postgres.js';
import { bucketsRaw, rawConfig, runCli, spawnServe, writeConfig } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';
import { testHandle } from '../../src/store/test-hook.js';
import type { PostgresTestHandle } from '../../src/store/postgres/index.js';
import { scrape, sum } from '../helpers/prom.js';
import { until } from '../helpers/wait.js';

after(stopSharedPostgres);

const POSTGRES_OPS: OpsBackend = {
  name: 'postgres',
  skip: PG_SKIP,
  async open(t) {
    const { url, name, server } = await freshDatabase(t);
    const config = validateConfig({ database: url, kinds: { hub: { buckets: [{ name: 'a' }] } } }, 'test.yml');
    if (config.database.backend !== 'postgres') throw new Error('not a PostgreSQL configuration');
    const store = await PostgresStore.open(resolvePostgres(config.database, { file: 'test.yml', env: {} }));
    t.after(() => store.close());
    return {
      store,
      sql: async (text) => void (await testHandle<PostgresTestHandle>(store).pool.query(text)),
      async seed(kind, bucket, n, prefix = 'u', start = 0) {
        // As helpers/ops.ts seeds SQLite: zero-padded names, assigned_at 1.7e12 + i ms.
        await testHandle<PostgresTestHandle>(store).pool.query(
          `INSERT INTO assignments (kind, name, bucket, assigned_at)
           SELECT $1, $2 || lpad(i::text, greatest(6, length(i::text)), '0'), $3,
                  'epoch'::timestamptz + (1700000000000 + i) * interval '1 millisecond'
           FROM generate_series($4::int, $5::int) AS i`,
          [kind, prefix, bucket, start, start + n - 1],
        );
      },
      async destroy() {
        await store.close();
        await server.admin(`DROP DATABASE "${name}" WITH (FORCE)`);
      },
    };
  },
};

runOpsSuite(POSTGRES_OPS);
runTransferSuite(POSTGRES_OPS);

runSqliteAgreement(POSTGRES_OPS);

describe('admin CLI against PostgreSQL while two instances serve', { skip: PG_SKIP }, () => {
  test('migrate, move, delete, doctor, audit, export: both instances answer the new buckets within a second', async (t) => {
    const db = await freshDatabase(t);
    const dir = tempDir(t);
    // The periodic re-check far beyond the test: only LISTEN/NOTIFY can deliver in time.
    const over = {
      database: db.url,
      store: { poll_ms: 60_000 },
      kinds: { hub: { buckets: bucketsRaw().map((b, i) => (i === 0 ? { ...b, state: 'draining' } : b)) } },
    };
    const file = writeConfig(dir, rawConfig(dir, over));
    const cli = async (...args: string[]): Promise<string> => {
      const r = await runCli([...args, '--config', file]);
      assert.equal(r.code, 0, `sharder ${args.join(' ')}: ${r.stderr}`);
      assert.ok(!r.stdout.includes(db.server.password) && !r.stderr.includes(db.server.password));
      return r.stdout;
    };
    const sql = await sqlClient(t, db.url);
    const instances = await Promise.all([spawnServe(t, file), spawnServe(t, file)]);
    await sql.query(
      "INSERT INTO assignments (kind, name, bucket) SELECT 'hub', 'u' || lpad(g::text, 4, '0'), 'hub-0' FROM " +
        'generate_series(0, 599) g',
    );
    const agent = new Agent({ connections: 4 });
    t.after(() => agent.close());
    const bucketOn = async (url: string, user: string): Promise<string> => {
      const r = await request(`${url}/auth`, { headers: { REMOTE_USER: user }, dispatcher: agent });
      await r.body.dump();
      assert.equal(r.statusCode, 200, user);
      return r.headers['x-shard-bucket'] as string;
    };
    const sample = ['u0000', 'u0123', 'u0599'];
    // Both instances cache the sample on hub-0.
    for (const i of instances) for (const u of sample) assert.equal(await bucketOn(i.url, u), 'hub-0');
    /** How long until every instance answers `want(user)` for every user, or Infinity after 3 s. */
    const reached = async (users: string[], want: (u: string) => Promise<string>, from: number): Promise<number> => {
      // One query at a time: `want` may query the one pg.Client `sql`, which must not be given a
      // query while another runs (pg warns that 9.0 removes the queue).
      const wanted = new Map<string, string>();
      for (const u of users) wanted.set(u, await want(u));
      const all = async (): Promise<boolean> =>
        (
          await Promise.all(
            instances.flatMap((i) => users.map(async (u) => (await bucketOn(i.url, u)) === wanted.get(u))),
          )
        ).every(Boolean);
      return until(all, 3000 - (performance.now() - from), 'every instance answering as the store has it', 20).then(
        () => performance.now() - from,
        () => Infinity,
      );
    };
    const stored = async (u: string): Promise<string> =>
      (await sql.query<{ bucket: string }>("SELECT bucket FROM assignments WHERE kind = 'hub' AND name = $1", [u]))
        .rows[0]!.bucket;

    const migrated = JSON.parse(
      await cli('migrate', 'hub-0', '--batch-size', '250', '--pause', '0', '--reason', 'retire hub-0', '--json'),
    ) as { moved: number; batches: number; remaining: number; targets: Record<string, number> };
    let t0 = performance.now();
    assert.deepEqual([migrated.moved, migrated.batches, migrated.remaining], [600, 3, 0]);
    assert.deepEqual(migrated.targets, { 'hub-1': 300, 'hub-2': 300 });
    const afterMigrate = await reached(sample, stored, t0);
    assert.ok(afterMigrate < 1000, `the migration reached both instances in ${afterMigrate.toFixed(0)} ms`);

    const target = (await stored('u0123')) === 'hub-1' ? 'hub-2' : 'hub-1';
    await cli('move', 'u0123', '--to', target, '--reason', 'by hand');
    t0 = performance.now();
    const afterMove = await reached(['u0123'], async () => target, t0);
    assert.ok(afterMove < 1000, `the move reached both instances in ${afterMove.toFixed(0)} ms`);

    // Both instances drop it from memory when the delete is announced (their cache shrinks).
    const cached = async (i: { control: string | null }): Promise<number> =>
      sum((await scrape(i.control!)).samples, 'sharder_cache_entries', { kind: 'hub' });
    const cachedBefore = await Promise.all(instances.map(cached));
    await cli('delete', 'u0599');
    await until(
      async () => (await Promise.all(instances.map(cached))).every((n, k) => n < cachedBefore[k]!),
      3000,
      'both instances forgot u0599',
      20,
    );
    // Forgotten everywhere: assigned afresh, once, and both instances agree.
    const again = await Promise.all(instances.map((i) => bucketOn(i.url, 'u0599')));
    assert.equal(again[0], again[1]);
    assert.equal((await sql.query("SELECT count(*)::int AS n FROM assignments WHERE name = 'u0599'")).rows[0].n, 1);

    const doctor = JSON.parse(await cli('doctor', '--json')) as { ok: boolean };
    assert.equal(doctor.ok, true, JSON.stringify(doctor));
    const audit = JSON.parse(await cli('audit', '--action', 'migrate', '--limit', '1000', '--json')) as {
      items: { batch: string; reason: string }[];
    };
    assert.equal(audit.items.length, 600);
    assert.equal(new Set(audit.items.map((e) => e.batch)).size, 3);
    const moves = JSON.parse(await cli('audit', '--name', 'u0123', '--json')) as {
      items: { action: string; to: string; actor: string }[];
    };
    assert.deepEqual(
      moves.items.map((e) => [e.action, e.to]),
      [
        ['move', target],
        ['migrate', moves.items[1]!.to],
      ],
    );
    assert.match(moves.items[0]!.actor, /^cli:/);

    const csv = await cli('export');
    const lines = csv.trimEnd().split('\n');
    assert.equal(lines[0], 'kind,name,bucket,assigned_at');
    assert.equal(lines.length, 601);
    assert.deepEqual(
      lines.slice(1, 3).map((l) => l.split(',')[1]),
      ['u0000', 'u0001'],
    );
  });
});
