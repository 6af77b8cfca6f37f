import type { Config } from '../config/types.js';
import type { Logger } from '../log.js';
import { PostgresStore } from './postgres.js';
import { resolvePostgres } from './postgres-connect.js';
import { SqliteStore } from './sqlite.js';
import type { Store } from './types.js';

/** Opens the store the configuration names, migrated and ready. */
export async function openStore(config: Config, log?: Logger): Promise<Store> {
  const db = config.database;
  switch (db.backend) {
    case 'sqlite':
      return SqliteStore.open({ path: db.path, busyTimeoutMs: db.busyTimeoutMs });
    case 'postgres':
      // PG* variables are read here, when connecting, as libpq reads them.
      return PostgresStore.open(resolvePostgres(db, { file: config.file ?? 'configuration', env: process.env }), log ? { log } : {});
  }
}
