/** The MariaDB/MySQL backend's registry entry (store/registry.ts). */
import type { Backend } from '../registry.js';
import { backupMariadb } from './backup.js';
import { resolveMariadb } from './connect.js';
import { MariadbStore } from './index.js';
import { MARIADB_ORIGINAL } from './original.js';

export const MARIADB_BACKEND: Backend<'mariadb'> = {
  name: 'mariadb',
  location: (db, src) => resolveMariadb(db, src).location,
  open: (db, src, log) => MariadbStore.open(resolveMariadb(db, src), log ? { log } : {}),
  backup: (db, target) =>
    backupMariadb(resolveMariadb(db, { file: 'configuration', env: process.env }).location, target),
  original: MARIADB_ORIGINAL,
};
