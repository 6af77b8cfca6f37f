/**
 * The MariaDB/MySQL store on a real MariaDB server (test/helpers/mariadb.ts): the shared store
 * contract, migrations applied once when instances start together, the change feed's lag,
 * and an outage: new assignments fail as unavailable within the timeout, and the store
 * recovers without a restart.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { validateConfig } from '../../src/config/validate.js';
import type { BucketPolicyInput } from '../../src/core/policy.js';
import type { MariadbTestHandle } from '../../src/store/mariadb/index.js';
import { MARIADB_MIGRATIONS } from '../../src/store/mariadb/schema.js';
import { openStore } from '../../src/store/registry.js';
import { testHandle } from '../../src/store/test-hook.js';
import type { Store } from '../../src/store/types.js';
import { MARIADB_LOCAL_SKIP, MARIADB_SKIP, freshMariadb, ownMariadb, stopSharedMariadb } from '../helpers/mariadb.js';
import { runStoreContract } from '../helpers/store-contract.js';
import { until } from '../helpers/wait.js';
import type { HasAfter } from '../helpers/context.js';

after(stopSharedMariadb);

const three: BucketPolicyInput[] = ['a', 'b', 'c'].map((name) => ({ name, weight: 1, state: 'active' as const }));

/** Opens a store on `url` as the server does (config → registry → open); closed when t ends. */
async function openOn(t: HasAfter, url: string, mariadb: Record<string, unknown> = {}): Promise<Store> {
  const config = validateConfig({ database: url, mariadb, kinds: { hub: { buckets: [{ name: 'a' }] } } }, 'test.yml');
  assert.equal(config.database.backend, 'mariadb');
  const store = await openStore(config);
  t.after(() => store.close());
  return store;
}

runStoreContract(
  'mariadb',
  async (t) => {
    const { url } = await freshMariadb(t);
    return { open: () => openOn(t, url) };
  },
  { skip: MARIADB_SKIP },
);

describe('MariaDB store', { skip: MARIADB_SKIP }, () => {
  test('five instances starting together apply each migration once, under GET_LOCK', async (t) => {
    const { url } = await freshMariadb(t);
    const stores = await Promise.all(Array.from({ length: 5 }, () => openOn(t, url)));
    const [rows] = await testHandle<MariadbTestHandle>(stores[0]!).pool.query(
      'SELECT version, name FROM schema_migrations ORDER BY version',
    );
    assert.deepEqual(
      rows,
      MARIADB_MIGRATIONS.map((m) => ({ version: m.version, name: m.name })),
    );
    assert.equal(stores[0]!.backend, 'mariadb');
    assert.doesNotMatch(stores[0]!.location, /sharder:[^@]/, 'the location has no password');
  });

  test('names differing only in case or trailing space are different objects; pages are in byte order', async (t) => {
    const { url } = await freshMariadb(t);
    const store = await openOn(t, url);
    const names = ['alice', 'Alice', 'alice ', 'ålice', 'zoë', 'Z', '~'];
    for (const n of names) assert.equal((await store.assign('hub', n, three)).created, true, n);
    const listed = (await store.list('hub', { limit: 100 })).map((r) => r.name);
    assert.deepEqual(
      listed,
      [...names].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
    );
  });

  test('another instance sees a move within store.poll_ms (the change feed, polled by id)', async (t) => {
    const { url } = await freshMariadb(t);
    const writer = await openOn(t, url);
    const reader = await openOn(t, url);
    await writer.assign('hub', 'alice', three);
    const seen: [string | null, string | null, string | undefined, number][] = [];
    const pollMs = 50;
    t.after(reader.watch((kind, name, bucket) => seen.push([kind, name, bucket, Date.now()]), pollMs));
    // Every change after the store opened is reported: move alice back and forth until one is
    // seen (each put is a change), then time one more.
    let moves = 0;
    await until(
      async () => {
        await writer.put('hub', 'alice', moves++ % 2 === 0 ? 'b' : 'c', { actor: 'cli:test' });
        return seen.length > 0;
      },
      5000,
      'the first change is seen',
      100,
    );
    const before = seen.length;
    const at = Date.now();
    const moved = await writer.put('hub', 'alice', 'a', { actor: 'cli:test' });
    assert.equal(moved.changed, true);
    await until(() => seen.length > before, 5000, 'the move is seen');
    const [kind, name, bucket, when] = seen.at(-1)!;
    assert.deepEqual([kind, name, bucket], ['hub', 'alice', 'a']);
    const lag = when - at;
    t.diagnostic(`change-feed lag ${lag} ms at poll_ms ${pollMs}`);
    assert.ok(lag <= pollMs * 4 + 200, `seen after ${lag} ms`);
  });

  test(
    'outage: new assignments fail as unavailable within the timeout, known objects read from memory, no restart',
    { skip: MARIADB_LOCAL_SKIP },
    async (t) => {
      const server = await ownMariadb(t);
      await server.admin('CREATE DATABASE outage');
      const store = await openOn(t, server.url('outage'), { connection_timeout_ms: 1000, statement_timeout_ms: 1000 });
      assert.equal((await store.assign('hub', 'before', three)).created, true);
      await server.stop();
      const started = Date.now();
      await assert.rejects(store.assign('hub', 'during', three), { code: 'SHARD_ERR_STORE_UNAVAILABLE' });
      assert.ok(Date.now() - started < 5000, `failed after ${Date.now() - started} ms`);
      await assert.rejects(store.ping(), { code: 'SHARD_ERR_STORE_UNAVAILABLE' });
      await server.start();
      await until(
        async () => {
          try {
            await store.ping();
            return true;
          } catch {
            return false;
          }
        },
        20_000,
        'the store answers again',
        100,
      );
      assert.equal((await store.assign('hub', 'after', three)).created, true);
      assert.equal(await store.lookup('hub', 'before'), 'a');
    },
  );
});
