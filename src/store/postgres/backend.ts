/** The PostgreSQL backend's registry entry (store/registry.ts). */
import type { Backend } from '../registry.js';
import { backupPostgres } from './backup.js';
import { resolvePostgres } from './connect.js';
import { PostgresStore } from './index.js';
import { POSTGRES_ORIGINAL } from './original.js';

export const POSTGRES_BACKEND: Backend<'postgres'> = {
  name: 'postgres',
  // PG* variables are read here, when connecting, as libpq reads them.
  location: (db, src) => resolvePostgres(db, src).location,
  open: (db, src, log) => PostgresStore.open(resolvePostgres(db, src), log ? { log } : {}),
  backup: backupPostgres,
  original: POSTGRES_ORIGINAL,
};
