import { backupStore } from '../../store/registry.js';
import { CONFIG_OPTION, CONFIG_USAGE, EXIT_OK, UsageError, configFrom, type Command } from '../command.js';
import { JSON_USAGE } from '../store.js';

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
    const report = await backupStore(config, args.positionals[0]!, { force: Boolean(args.values.force) });
    if (args.values.json) {
      io.out(`${JSON.stringify({ ...report, ms: Math.round(report.ms) })}\n`);
    } else {
      const mib = (report.bytes / 1024 / 1024).toFixed(1);
      io.out(`backed up ${report.source} to ${report.target}: ${report.assignments} ` + `assignment${report.assignments === 1 ? '' : 's'}, schema version ${report.schemaVersion}, ${mib} MiB, ` + `${(report.ms / 1000).toFixed(2)} s, quick_check ok\n`);
    }
    return EXIT_OK;
  },
};
