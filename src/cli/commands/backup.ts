import { BackupUnsupportedError } from '../../errors.js';
import { backupSqlite } from '../../store/sqlite-backup.js';
import { CONFIG_OPTION, CONFIG_USAGE, EXIT_OK, UsageError, configFrom, type Command } from '../command.js';
import { JSON_USAGE } from '../store.js';

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

export const backup: Command = {
  name: 'backup',
  summary: 'copy the SQLite database to FILE while the sharder keeps serving (PostgreSQL: use pg_dump)',
  usage: [
    'sharder backup FILE [--force] [--json]',
    CONFIG_USAGE,
    '  -f, --force         replace FILE if it exists',
    JSON_USAGE,
    '',
    'Run it as the user the service runs as (sudo -u sharder sharder backup FILE).',
    'Restore: stop the service, replace the database file with the backup (and delete its',
    '-wal and -shm files), start the service (docs/operations.md, "Backup and restore").',
  ].join('\n'),
  options: { ...CONFIG_OPTION, force: { type: 'boolean', short: 'f' }, json: { type: 'boolean' } },
  positionals: true,
  async run(args, io) {
    if (args.positionals.length !== 1) throw new UsageError('backup takes exactly one FILE to write the backup to');
    const config = configFrom(args, io);
    const db = config.database;
    if (db.backend !== 'sqlite') {
      const url = withoutPassword((db as { url?: string }).url ?? '');
      throw new BackupUnsupportedError(
        `the database is PostgreSQL (${url}): sharder backup copies SQLite files only. Back PostgreSQL up with pg_dump, e.g.\n` +
          `  pg_dump --format=custom --file=${args.positionals[0]} '${url}'\n` +
          'and restore with pg_restore (docs/operations.md, "Backup and restore")',
      );
    }
    const report = await backupSqlite({ source: db.path, target: args.positionals[0]!, force: Boolean(args.values.force), busyTimeoutMs: db.busyTimeoutMs });
    if (args.values.json) {
      io.out(`${JSON.stringify({ ...report, ms: Math.round(report.ms) })}\n`);
    } else {
      const mib = (report.bytes / 1024 / 1024).toFixed(1);
      io.out(`backed up ${report.source} to ${report.target}: ${report.assignments} assignment${report.assignments === 1 ? '' : 's'}, schema version ${report.schemaVersion}, ${mib} MiB, ${(report.ms / 1000).toFixed(2)} s, quick_check ok\n`);
    }
    return EXIT_OK;
  },
};
