import type { Config } from '../config/types.js';
import type { Logger } from '../log.js';
import { PostgresStore } from './postgres.js';
import { resolvePostgres, type PostgresConnection } from './postgres-connect.js';
import { SqliteStore } from './sqlite.js';
import type { Store } from './types.js';

/** Opens the store the configuration names, migrated and ready. */
export async function openStore(config: Config, log?: Logger): Promise<Store> {
  const db = config.database;
  switch (db.backend) {
    case 'sqlite':
      return SqliteStore.open({ path: db.path, busyTimeoutMs: db.busyTimeoutMs });
    case 'postgres':
      return PostgresStore.open(postgresConnection(config, db), log ? { log } : {});
  }
}

/** The PostgreSQL connection the configuration names. PG* variables are read here, when connecting, as libpq reads them. */
export function postgresConnection(config: Config, db: Extract<Config['database'], { backend: 'postgres' }>): PostgresConnection {
  return resolvePostgres(db, { file: config.file ?? 'configuration', env: process.env });
}
