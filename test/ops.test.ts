/**
 * The operations module on a real SQLite store: look-ups, moves, deletes, migrations, doctor,
 * audit. The scenarios are in helpers/ops-suite.ts (run on PostgreSQL by ops-postgres.test.ts);
 * import and export: transfer.test.ts; the HTTP and CLI faces: api/cli-admin tests.
 */
import { runOpsSuite } from './helpers/ops-suite.js';
import { SQLITE_OPS } from './helpers/ops.js';

runOpsSuite(SQLITE_OPS);
