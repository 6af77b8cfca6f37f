import { backup as backupOp } from '../../ops/operations.js';
import { EXIT_OK } from '../command.js';
import { opCommand, plural } from '../ops.js';

export const backup = opCommand(backupOp, {
  summary: 'copy the SQLite database to FILE while the sharder keeps serving (PostgreSQL: use pg_dump)',
  synopsis: 'sharder backup FILE [--force] [--json]',
  notes: [
    '',
    'Run it as the user the service runs as (sudo -u sharder sharder backup FILE).',
    'Restore: stop the service, replace the database file with the backup (and delete its',
    '-wal and -shm files), start the service (docs/operations.md, "Backup and restore").',
  ],
  print({ io, args }, report) {
    if (args.values.json) {
      io.out(`${JSON.stringify({ ...report, ms: Math.round(report.ms) })}\n`);
    } else {
      const mib = (report.bytes / 1024 / 1024).toFixed(1);
      io.out(
        `backed up ${report.source} to ${report.target}: ${plural(report.assignments, 'assignment')}, schema ` +
          `version ${report.schemaVersion}, ${mib} MiB, ${(report.ms / 1000).toFixed(2)} s, quick_check ok\n`,
      );
    }
    return EXIT_OK;
  },
});
