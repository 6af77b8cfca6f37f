import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { validateConfig } from '../../src/config/validate.js';
import type { BucketPolicyInput } from '../../src/core/policy.js';
import { PostgresStore } from '../../src/store/postgres/index.js';
import { resolvePostgres } from '../../src/store/postgres/connect.js';
import { POSTGRES_MIGRATIONS, SQL } from '../../src/store/postgres/schema.js';
import { runStoreContract } from '../helpers/store-contract.js';
import { until } from '../helpers/wait.js';
import {
  PG_LOCAL_SKIP,
  PG_SKIP,
  freshDatabase,
  ownPostgres,
  sqlClient,
  stopSharedPostgres,
} from '../helpers/postgres.js';
import { testHandle } from '../../src/store/test-hook.js';
import type { PostgresTestHandle } from '../../src/store/postgres/index.js';
import type { HasAfter } from '../helpers/context.js';

after(stopSharedPostgres);

const three: BucketPolicyInput[] = ['a', 'b', 'c'].map((name) => ({ name, weight: 1, state: 'active' as const }));

/** Opens a store on `url` as the server would (config → resolve → open); closed when t ends. */
async function openOn(t: HasAfter, url: string, postgres: Record<string, unknown> = {}): Promise<PostgresStore> {
  const config = validateConfig({ database: url, postgres, kinds: { hub: { buckets: [{ name: 'a' }] } } }, 'test.yml');
  assert.equal(config.database.backend, 'postgres');
  const store = await PostgresStore.open(resolvePostgres(config.database, { file: 'test.yml', env: {} }));
  t.after(() => store.close());
  return store;
}

runStoreContract(
  'postgres',
  async (t) => {
    const { url } = await freshDatabase(t);
    return { open: () => openOn(t, url) };
  },
  { skip: PG_SKIP },
);

describe('postgres store', { skip: PG_SKIP }, () => {
  test('five instances opening an empty database at once create the schema once', async (t) => {
    const { url } = await freshDatabase(t);
    const stores = await Promise.all(Array.from({ length: 5 }, () => openOn(t, url)));
    const sql = await sqlClient(t, url);
    assert.deepEqual(
      (await sql.query('SELECT version, name FROM schema_migrations ORDER BY version')).rows,
      POSTGRES_MIGRATIONS.map((m) => ({ version: m.version, name: m.name })),
    );
    const assigned = await Promise.all(stores.map((s, i) => s.assign('hub', `n${i}`, three)));
    assert.deepEqual(assigned.map((r) => r.bucket).sort(), ['a', 'a', 'b', 'b', 'c']);
  });

  test('a schema newer than this sharder is refused with a coded error', async (t) => {
    const { url } = await freshDatabase(t);
    await openOn(t, url);
    const sql = await sqlClient(t, url);
    await sql.query("INSERT INTO schema_migrations (version, name) VALUES (999, 'future')");
    await assert.rejects(openOn(t, url), { code: 'SHARD_ERR_SCHEMA_TOO_NEW' });
  });

  test('location names user, host and database but never the password', async (t) => {
    const { url, server } = await freshDatabase(t);
    const store = await openOn(t, url);
    assert.match(
      store.location,
      new RegExp(`^postgres://${server.user}@${server.host.replace(/\./g, '\\.')}:${server.port}/sharder_test_`),
    );
    assert.ok(!store.location.includes(server.password));
    assert.ok(
      !JSON.stringify(testHandle<PostgresTestHandle>(store).pool.options).includes(server.password),
      'pool options serialise without the password',
    );
  });

  test('a wrong password or an unreachable server fails to open with SHARD_ERR_STORE_UNAVAILABLE, password not echoed', async (t) => {
    const { url } = await freshDatabase(t);
    const bad = new URL(url);
    bad.password = 'not-the-password-xyz';
    const err = await openOn(t, bad.href).then(
      () => undefined,
      (e: unknown) => e as Error & { code: string },
    );
    assert.equal(err?.code, 'SHARD_ERR_STORE_UNAVAILABLE');
    assert.ok(!err.message.includes('not-the-password-xyz'), err.message);
    const closed = new URL(url);
    closed.port = '1';
    await assert.rejects(openOn(t, closed.href), { code: 'SHARD_ERR_STORE_UNAVAILABLE' });
  });

  test('a row inserted by a writer that took no lock is read as the winner (unique violation)', async (t) => {
    const { url } = await freshDatabase(t);
    const store = await openOn(t, url);
    const other = await sqlClient(t, url);
    await other.query('BEGIN');
    await other.query("INSERT INTO assignments (kind, name, bucket) VALUES ('hub', 'w', 'c')");
    // The store's plain lookup misses the uncommitted row; its INSERT then waits on the key.
    const pending = store.assign('hub', 'w', three);
    await until(
      async () =>
        (await other.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_locks WHERE NOT granted')).rows[0]!.n > 0,
      5000,
      "the store's INSERT waiting on the uncommitted key",
    );
    await other.query('COMMIT');
    assert.deepEqual(await pending, { bucket: 'c', created: false });
    assert.deepEqual(Object.fromEntries(await store.counts('hub')), { c: 1 });
  });

  test('admin writes racing first assignments (several connections, two kinds): no deadlock, no error, counts right', async (t) => {
    const { url } = await freshDatabase(t);
    const [s1, s2, admin] = await Promise.all([openOn(t, url), openOn(t, url), openOn(t, url)]);
    const who = { actor: 'cli:tester' };
    const b = (i: number): string => ['a', 'b', 'c'][i % 3]!;
    await admin.importBatch(
      Array.from({ length: 400 }, (_, i) => ({ kind: 'hub', name: `old-${i}`, bucket: b(i) })),
      { overwrite: false },
      who,
    );
    const assigns = Promise.all(
      Array.from({ length: 600 }, (_, i) =>
        (i % 2 === 0 ? s1 : s2).assign(i % 5 === 0 ? 'home' : 'hub', `new-${i}`, three),
      ),
    );
    const work = Promise.all([
      // Ten migration batches of 30 moves each, every one of a name still where it was.
      ...Array.from({ length: 10 }, (_, j) =>
        admin.moveBatch(
          'hub',
          Array.from({ length: 30 }, (_, i) => {
            const n = j * 30 + i;
            return { name: `old-${n}`, from: b(n), to: b(n + 1) };
          }),
          { ...who, batch: `race/${j}` },
        ),
      ),
      ...Array.from({ length: 20 }, (_, i) => admin.put('hub', `put-${i}`, 'c', who)),
      ...Array.from({ length: 20 }, (_, i) => admin.delete('hub', `old-${300 + i}`, who)),
      // Imports spanning both kinds (kind locks in key order), overwriting with updates after inserts.
      ...Array.from({ length: 5 }, (_, j) =>
        admin.importBatch(
          [
            { kind: 'home', name: `imp-${j}`, bucket: 'a' },
            { kind: 'hub', name: `imp-${j}`, bucket: 'b' },
            { kind: 'hub', name: `old-${380 + j}`, bucket: b(381 + j) },
          ],
          { overwrite: true },
          who,
        ),
      ),
      admin.repairCounts(who),
      admin.repairCounts(who, 'home'),
    ]);
    const [, done] = await Promise.all([assigns, work]);
    const moves = done.slice(0, 10) as { moved: string[]; stale: string[] }[];
    assert.equal(
      moves.reduce((n, m) => n + m.moved.length, 0),
      300,
      'every move applied',
    );
    for (const kind of ['hub', 'home']) {
      assert.deepEqual(
        Object.fromEntries([...(await admin.counts(kind))].sort()),
        Object.fromEntries([...(await admin.realCounts(kind))].sort()),
        kind,
      );
    }
    const total = (m: Map<string, number>): number => [...m.values()].reduce((x, y) => x + y, 0);
    assert.equal(total(await admin.realCounts('hub')), 400 - 20 + 480 + 20 + 5);
    assert.equal(total(await admin.realCounts('home')), 120 + 5);
    assert.deepEqual(await admin.repairCounts(who), [], 'nothing drifted');
    assert.equal((await admin.audit({ action: 'migrate', limit: 1000 })).length, 300);
  });

  test('every admin write that changes counts waits for the kind lock first assignments take', async (t) => {
    const { url } = await freshDatabase(t);
    const store = await openOn(t, url);
    const who = { actor: 'cli:tester' };
    await store.put('hub', 'x', 'a', who);
    await store.put('hub', 'y', 'a', who);
    const watcher = await sqlClient(t, url);
    const ops: [string, () => Promise<unknown>][] = [
      ['put', () => store.put('hub', 'p', 'b', who)],
      ['delete', () => store.delete('hub', 'y', who)],
      ['moveBatch', () => store.moveBatch('hub', [{ name: 'x', from: 'a', to: 'c' }], who)],
      [
        'importBatch',
        () =>
          store.importBatch(
            [
              { kind: 'home', name: 'i', bucket: 'a' },
              { kind: 'hub', name: 'i', bucket: 'a' },
            ],
            { overwrite: false },
            who,
          ),
      ],
      ['repairCounts', () => store.repairCounts(who)],
    ];
    for (const [what, op] of ops) {
      // Another instance is in the middle of a first assignment of kind hub.
      const holder = await sqlClient(t, url);
      await holder.query('BEGIN');
      await holder.query(SQL.lockKind, ['hub']);
      let settled = false;
      const pending = op().finally(() => (settled = true));
      await until(
        async () =>
          settled ||
          (
            await watcher.query<{ n: number }>(
              "SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
            )
          ).rows[0]!.n > 0,
        5000,
        `${what} waiting for the kind lock`,
      );
      assert.equal(settled, false, `${what} did not wait for the kind lock`);
      await holder.query('COMMIT');
      await pending;
    }
    assert.deepEqual(Object.fromEntries([...(await store.counts('hub'))].sort()), { a: 1, b: 1, c: 1 });
  });

  test('counts follow hand-written SQL: bulk INSERT ... SELECT, UPDATE, DELETE, TRUNCATE', async (t) => {
    const { url } = await freshDatabase(t);
    const store = await openOn(t, url);
    const sql = await sqlClient(t, url);
    await sql.query(
      "INSERT INTO assignments (kind, name, bucket) SELECT 'hub', 'bulk-' || g, (ARRAY['a','b','c'])[g % 3 + " +
        '1] FROM generate_series(1, 3000) g',
    );
    assert.deepEqual(Object.fromEntries(await store.counts('hub')), { a: 1000, b: 1000, c: 1000 });
    await sql.query("UPDATE assignments SET bucket = 'c' WHERE bucket = 'a' AND name LIKE 'bulk-1%'");
    await sql.query("DELETE FROM assignments WHERE bucket = 'b' AND name LIKE 'bulk-2%'");
    assert.deepEqual(Object.fromEntries(await store.counts('hub')), Object.fromEntries(await store.realCounts('hub')));
    // The next first assignment sees the corrected counts.
    const counts = await store.counts('hub');
    const emptiest = [...counts].sort((x, y) => x[1] - y[1])[0]![0];
    assert.equal((await store.assign('hub', 'after-bulk', three)).bucket, emptiest);
    await sql.query('TRUNCATE assignments');
    assert.deepEqual(Object.fromEntries(await store.counts('hub')), {});
  });

  test('a move or delete by another connection reaches watch() within a second (LISTEN/NOTIFY)', async (t) => {
    const { url } = await freshDatabase(t);
    const store = await openOn(t, url);
    await store.assign('hub', 'm', three);
    await store.assign('hub', 'd', three);
    const seen: string[] = [];
    // A poll interval far beyond the test: only the notification can deliver in time.
    const stop = store.watch((kind, name) => seen.push(`${kind}/${name}`), 60_000);
    t.after(stop);
    await until(() => [...testHandle<PostgresTestHandle>(store).watchers][0]!.isListening && seen.length > 0, 5000);
    assert.deepEqual(
      seen,
      ['null/null'],
      'placing the cursor says "anything may have changed" (what came before it is not reported)',
    );
    seen.length = 0;
    const sql = await sqlClient(t, url);
    await sql.query("UPDATE assignments SET bucket = 'c' WHERE name = 'm'");
    await sql.query("DELETE FROM assignments WHERE name = 'd'");
    const took = await until(() => seen.length >= 2, 1000);
    assert.ok(took < 1000);
    assert.deepEqual(seen, ['hub/m', 'hub/d']);
  });

  test('a change that sends no notification is still found by the periodic re-check', async (t) => {
    const { url } = await freshDatabase(t);
    const store = await openOn(t, url);
    const seen: string[] = [];
    t.after(store.watch((kind, name) => seen.push(`${kind}/${name}`), 100));
    await until(() => seen.includes('null/null'), 5000);
    seen.length = 0;
    const sql = await sqlClient(t, url);
    await sql.query("INSERT INTO changes (kind, name) VALUES ('hub', 'silent')");
    await until(() => seen.length >= 1, 1000);
    assert.deepEqual(seen, ['hub/silent']);
  });

  test('losing the LISTEN connection: it reconnects and drops every cache', async (t) => {
    const { url } = await freshDatabase(t);
    const store = await openOn(t, url);
    const seen: string[] = [];
    t.after(store.watch((kind, name, bucket) => seen.push(`${kind}/${name}/${bucket}`), 60_000));
    const w = [...testHandle<PostgresTestHandle>(store).watchers][0]!;
    await until(() => w.isListening && seen.includes('null/null/undefined'), 5000);
    seen.length = 0;
    const sql = await sqlClient(t, url);
    await sql.query(
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query = 'LISTEN sharder_changes' AND " +
        'datname = current_database()',
    );
    await until(() => seen.includes('null/null/undefined'), 5000);
    await until(() => w.isListening, 5000);
    seen.length = 0;
    const { bucket } = await store.assign('hub', 'x', three);
    await sql.query("DELETE FROM assignments WHERE name = 'x'");
    await until(() => seen.length >= 2, 1000);
    assert.deepEqual(
      seen,
      [`hub/x/${bucket}`, 'hub/x/undefined'],
      'the first assignment with its bucket, then the delete',
    );
  });

  test('a reader whose cursor was pruned away drops every cache', async (t) => {
    const { url } = await freshDatabase(t);
    const store = await openOn(t, url);
    await store.assign('hub', 'p1', three);
    await store.assign('hub', 'p2', three);
    const sql = await sqlClient(t, url);
    await sql.query("DELETE FROM assignments WHERE name = 'p1'");
    const seen: string[] = [];
    t.after(store.watch((kind, name) => seen.push(`${kind}/${name}`), 100));
    await until(() => seen.length > 0, 5000);
    assert.deepEqual(seen, ['null/null'], "only the start: p1's delete came before the cursor");
    seen.length = 0;
    // As pruning would: the reader's cursor row and everything before it are gone.
    await sql.query('DELETE FROM changes');
    await sql.query("DELETE FROM assignments WHERE name = 'p2'");
    await until(() => seen.length >= 1, 2000);
    assert.equal(seen[0], 'null/null');
  });

  test('a closed pool or an unreachable server answers SHARD_ERR_STORE_UNAVAILABLE quickly, not a hang', async (t) => {
    const { url, name, server } = await freshDatabase(t);
    const store = await openOn(t, url, { connection_timeout_ms: 500 });
    await store.assign('hub', 'known', three);
    // Forbid new connections and end the store's: the database is "down" for it.
    await server.admin(`ALTER DATABASE "${name}" ALLOW_CONNECTIONS false`);
    await server.admin('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1', [name]);
    const started = Date.now();
    await assert.rejects(store.assign('hub', 'new', three), { code: 'SHARD_ERR_STORE_UNAVAILABLE' });
    await assert.rejects(store.ping(), { code: 'SHARD_ERR_STORE_UNAVAILABLE' });
    assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
    await server.admin(`ALTER DATABASE "${name}" ALLOW_CONNECTIONS true`);
    // Recovery without reopening the store.
    assert.equal((await store.assign('hub', 'new', three)).created, true);
    await store.ping();
  });
});

describe('postgres store: TLS', { skip: PG_LOCAL_SKIP }, () => {
  test('sslmode require, verify-ca and verify-full against a server with a self-signed certificate', async (t) => {
    // The certificate names db.test.invalid; we connect to 127.0.0.1.
    const server = await ownPostgres(t, { tls: { name: 'db.test.invalid' } });
    const { url } = await freshDatabase(t, server);
    const caFile = join(server.dir!, 'server.crt');
    const sslInUse = async (store: PostgresStore): Promise<boolean> =>
      (
        await testHandle<PostgresTestHandle>(store).pool.query<{ ssl: boolean }>(
          'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
        )
      ).rows[0]!.ssl;

    assert.equal(await sslInUse(await openOn(t, url, { ssl: { mode: 'disable' } })), false);
    assert.equal(await sslInUse(await openOn(t, url, { ssl: { mode: 'require' } })), true);
    assert.equal(await sslInUse(await openOn(t, url, { ssl: { mode: 'verify-ca', ca_file: caFile } })), true);
    // The chain is trusted but the name does not match: verify-full refuses.
    await assert.rejects(openOn(t, url, { ssl: { mode: 'verify-full', ca_file: caFile } }), {
      code: 'SHARD_ERR_STORE_UNAVAILABLE',
      message: /ERR_TLS_CERT_ALTNAME_INVALID/,
    });
    // No CA given: the system CAs do not know a self-signed certificate.
    await assert.rejects(openOn(t, url, { ssl: { mode: 'verify-ca' } }), {
      code: 'SHARD_ERR_STORE_UNAVAILABLE',
      message: /SELF_SIGNED/,
    });
  });
});

describe('postgres store: privileges', { skip: PG_LOCAL_SKIP }, () => {
  test('once the schema is current, a role with only SELECT, INSERT, UPDATE, DELETE can run the sharder', async (t) => {
    const server = await ownPostgres(t);
    const { url, name } = await freshDatabase(t, server);
    await openOn(t, url);
    const sql = await sqlClient(t, url);
    await sql.query("CREATE ROLE sharder_app LOGIN PASSWORD 'app-password'");
    await sql.query(`GRANT CONNECT ON DATABASE "${name}" TO sharder_app`);
    await sql.query('REVOKE CREATE ON SCHEMA public FROM PUBLIC');
    await sql.query('GRANT USAGE ON SCHEMA public TO sharder_app');
    await sql.query('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO sharder_app');
    const app = new URL(url);
    app.username = 'sharder_app';
    app.password = 'app-password';
    const store = await openOn(t, app.href);
    assert.equal((await store.assign('hub', 'limited', three)).created, true);
    // Admin writes insert audit rows (an identity column) with the table privileges alone.
    assert.equal((await store.put('hub', 'limited', 'c', { actor: 'cli:app' })).changed, true);
    assert.equal((await store.audit({ limit: 1 }))[0]?.actor, 'cli:app');
    await testHandle<PostgresTestHandle>(store).pool.query("DELETE FROM assignments WHERE name = 'limited'");
    assert.deepEqual(Object.fromEntries(await store.counts('hub')), {});
  });
});
