import type { Config } from '../config/types.js';
import { ConfigError } from '../errors.js';
import { SqliteStore } from './sqlite.js';
import type { Store } from './types.js';

/** Opens the store the configuration names, migrated and ready. */
export async function openStore(config: Config): Promise<Store> {
  const db = config.database;
  switch (db.backend) {
    case 'sqlite':
      return SqliteStore.open({ path: db.path, busyTimeoutMs: db.busyTimeoutMs });
    case 'postgres':
      throw new ConfigError([{ source: config.file ?? 'configuration', key: 'database', message: 'the PostgreSQL backend is not part of this build yet: use sqlite:PATH' }]);
  }
}
