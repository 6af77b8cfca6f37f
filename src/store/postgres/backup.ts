/**
 * `sharder backup` on PostgreSQL: the sharder does not copy a PostgreSQL database itself
 * (pg_dump does it better, and consistently); it says how.
 */
import { BackupUnsupportedError } from '../../errors.js';

/** A PostgreSQL URL without its password, for messages. */
export function withoutPassword(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '';
    return u.toString().replace(/^(postgres(?:ql)?:\/\/[^@/]*):@/, '$1@');
  } catch {
    return 'postgres://USER@HOST:5432/DB';
  }
}

export function backupPostgres(db: { url: string }, target: string): Promise<never> {
  const url = withoutPassword(db.url);
  return Promise.reject(
    new BackupUnsupportedError(
      `the database is PostgreSQL (${url}): sharder backup copies SQLite files only. Back PostgreSQL up with ` +
        'pg_dump, e.g.\n' +
        `  pg_dump --format=custom --file=${target} '${url}'\n` +
        'and restore with pg_restore (docs/operations.md, "Backup and restore")',
    ),
  );
}
