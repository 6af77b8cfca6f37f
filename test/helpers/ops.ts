/** The operations module on a real store (SQLite in a temporary directory, or PostgreSQL). */
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Config, RawConfig } from '../../src/config/types.js';
import { Operations } from '../../src/ops/index.js';
import { SqliteStore } from '../../src/store/sqlite/index.js';
import type { Store } from '../../src/store/types.js';
import { testConfig } from './sharder.js';
import { tempDir } from './tmp.js';
import { testHandle } from '../../src/store/test-hook.js';
import type { SqliteTestHandle } from '../../src/store/sqlite/index.js';
import type { HasAfter } from './context.js';

export interface OpsFixture {
  dir: string;
  store: SqliteStore;
  ops: Operations;
  /** Replaces the configuration the operations see (as a reload would). */
  setConfig(over: RawConfig): Config;
  config(): Config;
  /** (kind, name) pairs the operations reported as changed. */
  changed: [string, string | null][];
}

export const who = { actor: 'cli:tester' };

export function opsFixture(t: HasAfter, over: RawConfig = {}, dir = tempDir(t)): OpsFixture {
  let config = testConfig(dir, over);
  const store = SqliteStore.open({ path: join(dir, 'sharder.db'), busyTimeoutMs: 5000 });
  t.after(() => store.close());
  const changed: [string, string | null][] = [];
  const ops = new Operations({
    store,
    config: () => config,
    changed: (k, n) => changed.push([k, n]),
    hub: { stopPollMs: 20 },
  });
  return {
    dir,
    store,
    ops,
    changed,
    setConfig: (o) => (config = testConfig(dir, o)),
    config: () => config,
  };
}

/**
 * Puts `n` objects `${prefix}${i}` on `bucket` in one transaction (fast fixture data), through
 * the store or straight into its file.
 */
export function seed(
  target: SqliteStore | SqliteTestHandle,
  kind: string,
  bucket: string,
  n: number,
  prefix = 'u',
  start = 0,
): void {
  const db = target instanceof SqliteStore ? testHandle<SqliteTestHandle>(target) : target;
  const insert = db.prepare('INSERT INTO assignments (kind, name, bucket, assigned_at) VALUES (?, ?, ?, ?)');
  db.transaction(() => {
    for (let i = start; i < start + n; i++)
      insert.run(kind, `${prefix}${String(i).padStart(6, '0')}`, bucket, 1_700_000_000_000 + i);
  })();
}

/**
 * A store backend for the operations suites (test/helpers/ops-suite.ts), which run the same
 * scenarios on SQLite (ops.test.ts, transfer.test.ts) and PostgreSQL (ops-postgres.test.ts).
 */
export interface OpsBackend {
  readonly name: string;
  /** Declared skip reason when the backend cannot run here. */
  readonly skip: string | undefined;
  /** A fresh, empty database (dropped when `t` ends) and its store. */
  open(t: HasAfter, dir: string): Promise<BackendDatabase>;
}

export interface BackendDatabase {
  readonly store: Store;
  /** Runs SQL that both backends understand (e.g. to make counts drift on purpose). */
  sql(text: string): Promise<void>;
  /** Puts `n` objects `${prefix}${i}` (i zero-padded to 6) on `bucket` in one statement. */
  seed(kind: string, bucket: string, n: number, prefix?: string, start?: number): Promise<void>;
  /** Closes the store and deletes the database. */
  destroy(): Promise<void>;
}

export const SQLITE_OPS: OpsBackend = {
  name: 'sqlite',
  skip: undefined,
  async open(t, dir) {
    const path = join(dir, `sharder-${randomBytes(4).toString('hex')}.db`);
    const store = SqliteStore.open({ path, busyTimeoutMs: 5000 });
    t.after(() => store.close());
    return {
      store,
      sql: async (text) => void testHandle<SqliteTestHandle>(store).exec(text),
      seed: async (kind, bucket, n, prefix, start) => seed(store, kind, bucket, n, prefix, start),
      async destroy() {
        await store.close();
        for (const ext of ['', '-wal', '-shm']) rmSync(`${path}${ext}`, { force: true });
      },
    };
  },
};

export interface BackendOpsFixture extends Omit<OpsFixture, 'store'> {
  store: Store;
  db: BackendDatabase;
}

/** opsFixture on any backend: a fresh database, the operations on it. */
export async function backendOpsFixture(
  t: HasAfter,
  backend: OpsBackend,
  over: RawConfig = {},
  dir = tempDir(t),
): Promise<BackendOpsFixture> {
  let config = testConfig(dir, over);
  const db = await backend.open(t, dir);
  const changed: [string, string | null][] = [];
  const ops = new Operations({
    store: db.store,
    config: () => config,
    changed: (k, n) => changed.push([k, n]),
    hub: { stopPollMs: 20 },
  });
  return {
    dir,
    db,
    store: db.store,
    ops,
    changed,
    setConfig: (o) => (config = testConfig(dir, o)),
    config: () => config,
  };
}
