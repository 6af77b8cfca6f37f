/**
 * The in-memory assignment table (src/core/table.ts) on a real SQLite store: the load at
 * start in pages, changes applied as announced, a reload that keeps answering, a change that
 * arrives while a page is read, and a table larger than cache.max_entries.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { createLogger } from '../../src/log.js';
import { Assigner } from '../../src/core/assigner.js';
import { applyKinds, type KindRuntime } from '../../src/core/buckets.js';
import { AssignmentTable } from '../../src/core/table.js';
import { SqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/types.js';
import { testConfig } from '../helpers/sharder.js';
import { logRecorder } from '../helpers/log.js';
import { tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/wait.js';
import { testHandle } from '../../src/store/test-hook.js';
import type { SqliteTestHandle } from '../../src/store/sqlite/index.js';
import type { HasAfter } from '../helpers/context.js';

const AUDIT = { actor: 'cli:test' };

function setup(t: HasAfter, rows: number, opts: { max?: number; wrap?: (s: SqliteStore) => Store } = {}) {
  const dir = tempDir(t);
  const sqlite = SqliteStore.open({ path: join(dir, 'sharder.db'), busyTimeoutMs: 5000 });
  t.after(() => sqlite.close());
  testHandle<SqliteTestHandle>(sqlite)
    .prepare(
      `
    WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?)
    INSERT INTO assignments (kind, name, bucket, assigned_at) SELECT 'hub', 'user-' || i, 'hub-' || (i % 3), 0 FROM s`,
    )
    .run(rows);
  const store = opts.wrap ? opts.wrap(sqlite) : sqlite;
  const kinds = new Map<string, KindRuntime>();
  const config = testConfig(dir, { cache: { max_entries: opts.max ?? 100_000 } });
  applyKinds(kinds, config.kinds, config.cache.maxEntries);
  const { sink, events } = logRecorder();
  const log = createLogger('info', sink);
  const assigner = new Assigner(store, log, () => 5000);
  const table = new AssignmentTable({ store, kinds: () => kinds, assigner, log, pageRows: 7 });
  t.after(() => table.stop());
  const kind = kinds.get('hub')!;
  const loads = (): number => events.filter((e) => e.event === 'table_loaded').length;
  return { sqlite, kind, table, assigner, events, loads };
}

test('every stored assignment is in memory after the load, read in pages; each answer is then synchronous', async (t) => {
  const { kind, table, assigner, events } = setup(t, 100);
  table.loadNew();
  await table.whenLoaded();
  assert.deepEqual(table.state('hub').rows, 100);
  assert.equal(kind.cache.size, 100);
  for (let i = 1; i <= 100; i++) {
    const r = assigner.resolve(kind, `user-${i}`);
    assert.ok(!(r instanceof Promise), `user-${i} answered without the store`);
    assert.equal(r.name, `hub-${i % 3}`);
  }
  assert.equal(kind.cache.misses, 0);
  assert.ok(events.some((e) => e.event === 'table_loaded' && e.rows === 100));
});

test('changes as announced: a bucket given is written at once; none means read again; a whole kind is read again while the old table answers', async (t) => {
  const { sqlite, kind, table, loads } = setup(t, 30);
  table.loadNew();
  await table.whenLoaded();

  table.changed('hub', 'user-1', 'hub-2');
  assert.equal(
    kind.cache.peek('user-1')?.name,
    'hub-2',
    'a first assignment or move with its bucket is in memory at once',
  );

  await sqlite.put('hub', 'user-2', 'hub-0', AUDIT);
  table.changed('hub', 'user-2');
  assert.equal(kind.cache.peek('user-2'), undefined, 'without a bucket the entry is dropped...');
  await until(() => kind.cache.peek('user-2')?.name === 'hub-0', 2000, 'user-2 read again');

  await sqlite.delete('hub', 'user-3', AUDIT);
  table.changed('hub', 'user-3');
  assert.equal(kind.cache.peek('user-3'), undefined, 'a deleted object is gone');

  // Written by "another process" without a feed row: only a reload of the kind finds it.
  testHandle<SqliteTestHandle>(sqlite)
    .prepare("INSERT INTO assignments (kind, name, bucket, assigned_at) VALUES ('hub', 'bulk-1', 'hub-1', 0)")
    .run();
  testHandle<SqliteTestHandle>(sqlite).prepare("DELETE FROM assignments WHERE name = 'user-4'").run();
  table.changed('hub', null);
  assert.equal(kind.cache.peek('user-4')?.name, 'hub-1', 'the old table answers while the kind is read again');
  await until(() => loads() === 2, 2000, 'the reload');
  assert.equal(kind.cache.peek('bulk-1')?.name, 'hub-1');
  assert.equal(kind.cache.peek('user-4'), undefined, 'a row gone from the store is gone from the new table');
  assert.equal(kind.cache.peek('user-1')?.name, 'hub-1', 'user-1 as stored (the announcement above was made up)');
  assert.equal(kind.cache.size, 29, '30 stored, one deleted, one added, one removed behind its back');
});

test('a change announced while a page is being read wins over that page', async (t) => {
  let hold: { reached: () => void; release: Promise<void> } | undefined;
  const wrap = (s: SqliteStore): Store =>
    new Proxy(s, {
      get(target, prop) {
        if (prop === 'list') {
          return async (...args: Parameters<Store['list']>) => {
            const page = await target.list(...args);
            const h = hold;
            hold = undefined;
            if (h) {
              h.reached();
              await h.release;
            }
            return page;
          };
        }
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  const { sqlite, kind, table } = setup(t, 20, { wrap });
  let release!: () => void;
  const reached = new Promise<void>((resolve) => {
    hold = { reached: resolve, release: new Promise<void>((r) => (release = r)) };
  });
  table.loadNew();
  await reached;
  // The first page (user-1, user-10 .. user-15 in byte order) was read with user-10 on hub-1.
  await sqlite.put('hub', 'user-10', 'hub-2', AUDIT);
  table.changed('hub', 'user-10', 'hub-2');
  release();
  await table.whenLoaded();
  assert.equal(kind.cache.peek('user-10')?.name, 'hub-2', 'the announced bucket, not the page read before it');
  assert.equal(kind.cache.size, 20);
});

test('more assignments than cache.max_entries: that many are loaded, with a warning that says what happens to the rest', async (t) => {
  const { kind, table, events } = setup(t, 50, { max: 20 });
  table.loadNew();
  await table.whenLoaded();
  assert.equal(kind.cache.size, 20);
  const w = events.find((e) => e.event === 'table_exceeds_cache');
  assert.ok(w, 'warned');
  assert.equal(w.assignments, 50);
  assert.equal(w.max_entries, 20);
  assert.match(String(w.msg), /read from the store on first use/);
});
