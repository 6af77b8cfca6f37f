import { importOriginal as importOriginalOp } from '../../ops/operations.js';
import { flag, opCommand } from '../ops.js';
import { printImport } from './import.js';

export const importOriginal = opCommand(importOriginalOp, {
  summary: "import the original Python sharder's assignments (its shard table, SQLite or PostgreSQL)",
  synopsis: 'sharder import-original URL [--overwrite] [--reason TEXT] [--kind KIND] [--json]',
  notes: [
    "URL: postgres://USER:PASSWORD@HOST/DB (or the original's postgresql+psycopg2://...), sqlite:///relative.db,",
    '     sqlite:////absolute.db, or a file path. Its dummy-<bucket> placeholder rows are skipped.',
    'Give a password through PGPASSWORD or ~/.pgpass rather than the command line.',
  ],
  exitFailure: 'conflicts were left as they were, or the import failed',
  print: ({ io, args }, report) => printImport(io, report, flag(args, 'json')),
});
