/** The SQLite backend's registry entry (store/registry.ts). */
import type { Backend } from '../registry.js';
import { backupSqlite } from './backup.js';
import { SqliteStore } from './index.js';
import { SQLITE_ORIGINAL } from './original.js';

export const SQLITE_BACKEND: Backend<'sqlite'> = {
  name: 'sqlite',
  location: (db) => SqliteStore.location(db.path),
  open: async (db) => SqliteStore.open({ path: db.path, busyTimeoutMs: db.busyTimeoutMs }),
  backup: (db, target, opts) =>
    backupSqlite({ source: db.path, target, force: opts.force, busyTimeoutMs: db.busyTimeoutMs }),
  original: SQLITE_ORIGINAL,
};
