/** `sharder backup` on MariaDB/MySQL: says how to back it up with the server's own tool. */
import { BackupUnsupportedError } from '../../errors.js';

export function backupMariadb(location: string, target: string): Promise<never> {
  return Promise.reject(
    new BackupUnsupportedError(
      `the database is MariaDB/MySQL (${location}): sharder backup copies SQLite files only. Back it up with ` +
        'mariadb-dump (or mysqldump), e.g.\n' +
        `  mariadb-dump --single-transaction --routines --triggers --result-file=${target} DB\n` +
        'and restore by feeding the file to the mariadb client (README.md, "Backup and restore")',
    ),
  );
}
