import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { SqliteStore } from '../../src/store/sqlite/index.js';
import { SQLITE_MIGRATIONS } from '../../src/store/sqlite/schema.js';
import { runStoreContract } from '../helpers/store-contract.js';
import { tempDir } from '../helpers/tmp.js';
import { testHandle } from '../../src/store/test-hook.js';
import type { SqliteTestHandle } from '../../src/store/sqlite/index.js';
import { until } from '../helpers/wait.js';

runStoreContract('sqlite', async (t) => {
  const path = join(tempDir(t), 'contract.db');
  return {
    async open() {
      const store = SqliteStore.open({ path, busyTimeoutMs: 5000 });
      t.after(() => store.close());
      return store;
    },
  };
});

test('sqlite: schema is versioned and a newer schema is refused', async (t) => {
  const path = join(tempDir(t), 'v.db');
  await SqliteStore.open({ path, busyTimeoutMs: 1000 }).close();
  const db = new Database(path);
  assert.deepEqual(db.prepare('SELECT version FROM schema_migrations ORDER BY version').all(), [
    { version: 1 },
    { version: 2 },
  ]);
  db.prepare('INSERT INTO schema_migrations VALUES (999, ?, 0)').run('future');
  db.close();
  assert.throws(() => SqliteStore.open({ path, busyTimeoutMs: 1000 }), { code: 'SHARD_ERR_SCHEMA_TOO_NEW' });
});

test('sqlite: the folder of the database file is created', async (t) => {
  const path = join(tempDir(t), 'a', 'b', 'sharder.db');
  const store = SqliteStore.open({ path, busyTimeoutMs: 1000 });
  t.after(() => store.close());
  assert.equal(store.location, path);
  await store.ping();
});

test('sqlite: WAL mode; no blocking busy handler (the store retries from a timer, see sqlite-busy.test.ts)', (t) => {
  const store = SqliteStore.open({ path: join(tempDir(t), 'w.db'), busyTimeoutMs: 1234 });
  t.after(() => store.close());
  assert.equal(testHandle<SqliteTestHandle>(store).pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(testHandle<SqliteTestHandle>(store).pragma('busy_timeout', { simple: true }), 0);
});

test('sqlite: a move or delete by another connection reaches watch() listeners', async (t) => {
  const path = join(tempDir(t), 'watch.db');
  const store = SqliteStore.open({ path, busyTimeoutMs: 1000 });
  t.after(() => store.close());
  await store.assign('hub', 'm', [{ name: 'a', weight: 1, state: 'active' }]);
  await store.assign('hub', 'd', [{ name: 'a', weight: 1, state: 'active' }]);
  const seen: string[] = [];
  const stop = store.watch((kind, name) => seen.push(`${kind}/${name}`), 20);
  t.after(stop);
  const other = new Database(path);
  other.prepare("UPDATE assignments SET bucket = 'b' WHERE name = 'm'").run();
  other.prepare("DELETE FROM assignments WHERE name = 'd'").run();
  other.close();
  await until(() => seen.length >= 2, 2000, 'the watcher saw both changes');
  assert.deepEqual(seen, ['hub/m', 'hub/d']);
  // Triggers kept the counts right through a hand-written UPDATE and DELETE.
  assert.deepEqual(Object.fromEntries(await store.counts('hub')), { b: 1 });
  assert.deepEqual(Object.fromEntries(await store.realCounts('hub')), { b: 1 });
});

test('sqlite: a version-1 database is migrated to the audit schema with its assignments kept', async (t) => {
  const path = join(tempDir(t), 'v1.db');
  const db = new Database(path);
  db.exec(
    'CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
  );
  db.exec(SQLITE_MIGRATIONS[0]!.sql);
  db.prepare('INSERT INTO schema_migrations VALUES (1, ?, 0)').run(SQLITE_MIGRATIONS[0]!.name);
  db.prepare("INSERT INTO assignments VALUES ('hub', 'old', 'a', 1)").run();
  db.close();
  const store = SqliteStore.open({ path, busyTimeoutMs: 1000 });
  t.after(() => store.close());
  assert.equal(await store.lookup('hub', 'old'), 'a');
  await store.put('hub', 'old', 'b', { actor: 'cli:t' });
  assert.equal((await store.audit({ limit: 1 }))[0]?.action, 'move');
});

test('sqlite: repairCounts corrects drifted counts and audits each correction', async (t) => {
  const path = join(tempDir(t), 'drift.db');
  const store = SqliteStore.open({ path, busyTimeoutMs: 1000 });
  t.after(() => store.close());
  const b = [
    { name: 'a', weight: 1, state: 'active' as const },
    { name: 'b', weight: 1, state: 'active' as const },
  ];
  for (let i = 0; i < 4; i++) await store.assign('hub', `u${i}`, b);
  testHandle<SqliteTestHandle>(store).prepare("UPDATE bucket_counts SET count = 7 WHERE bucket = 'a'").run();
  testHandle<SqliteTestHandle>(store).prepare("INSERT INTO bucket_counts VALUES ('hub', 'ghost', 3)").run();
  testHandle<SqliteTestHandle>(store).prepare("INSERT INTO bucket_counts VALUES ('home', 'x', 1)").run();
  assert.deepEqual(await store.repairCounts({ actor: 'cli:t' }, 'hub'), [
    { kind: 'hub', bucket: 'a', kept: 7, real: 2 },
    { kind: 'hub', bucket: 'ghost', kept: 3, real: 0 },
  ]);
  assert.deepEqual(Object.fromEntries(await store.counts('hub')), { a: 2, b: 2 });
  assert.deepEqual(Object.fromEntries(await store.counts('home')), { x: 1 }, 'other kinds untouched when one is named');
  assert.deepEqual(await store.repairCounts({ actor: 'cli:t' }), [{ kind: 'home', bucket: 'x', kept: 1, real: 0 }]);
  const log = await store.audit({ action: 'repair', limit: 10 });
  assert.equal(log.length, 3);
  assert.match(log.at(-1)!.reason!, /count of "a" was 7, real 2/);
});
