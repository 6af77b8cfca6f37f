/** The operations module on a real SQLite store in a temporary directory. */
import { join } from 'node:path';
import type { Config, RawConfig } from '../../src/config/types.js';
import { Operations } from '../../src/ops/index.js';
import { SqliteStore } from '../../src/store/sqlite.js';
import { testConfig } from './sharder.js';
import { tempDir } from './tmp.js';

interface HasAfter {
  after(fn: () => unknown): void;
}

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
  const ops = new Operations({ store, config: () => config, changed: (k, n) => changed.push([k, n]), hub: { stopPollMs: 20 } });
  return {
    dir, store, ops, changed,
    setConfig: (o) => (config = testConfig(dir, o)),
    config: () => config,
  };
}

/** Puts `n` objects `${prefix}${i}` on `bucket` in one transaction (fast fixture data). */
export function seed(store: SqliteStore, kind: string, bucket: string, n: number, prefix = 'u', start = 0): void {
  const insert = store.handle.prepare('INSERT INTO assignments (kind, name, bucket, assigned_at) VALUES (?, ?, ?, ?)');
  store.handle.transaction(() => {
    for (let i = start; i < start + n; i++) insert.run(kind, `${prefix}${String(i).padStart(6, '0')}`, bucket, 1_700_000_000_000 + i);
  })();
}
