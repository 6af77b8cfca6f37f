/**
 * The better-sqlite3 build that is safe on the running Node.js. Import `Database` from here,
 * never from 'better-sqlite3' directly.
 *
 * Why two builds: better-sqlite3 12 wraps its objects in Node's internal `node::ObjectWrap`,
 * whose destructor, since Node 24.19, aborts the whole process (`Assertion failed: (env) !=
 * nullptr` in RemoveEnvironmentCleanupHook) when a Database or Statement is garbage collected
 * outside a JavaScript context (https://github.com/nodejs/node/issues/65446). We saw it here:
 * our own SQLite tests aborted in one run out of six on Node 24.21. better-sqlite3 13 moved to
 * Node-API and does not have the bug, but it is built for Node-API 10, which only Node 22.14
 * and later provide: on Node 20 it segfaults on the first `new Database()`
 * (https://github.com/WiseLibs/better-sqlite3/issues/1514). So both are installed (13 under the
 * alias `better-sqlite3-napi`, with prebuilt binaries in the package) and the one the runtime
 * can load is chosen here. Both have the same JavaScript API; the types are 12's.
 */
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';

/** Node-API version that better-sqlite3 13 is compiled for. */
export const NAPI_FOR_V13 = 10;

/** The package the running Node.js loads: 13 where Node-API 10 exists, else 12. */
export const SQLITE_DRIVER = Number(process.versions.napi ?? 0) >= NAPI_FOR_V13 ? 'better-sqlite3-napi' : 'better-sqlite3';

const require = createRequire(import.meta.url);

function load(): typeof BetterSqlite3 {
  try {
    return require(SQLITE_DRIVER) as typeof BetterSqlite3;
  } catch (err) {
    throw new Error(
      `cannot load the SQLite driver ${SQLITE_DRIVER} for Node.js ${process.version} (Node-API ${process.versions.napi}): ${(err as Error).message}. ` +
        'Reinstall the sharder with this Node.js (npm ci, or npm rebuild better-sqlite3) so that its native module is built for it.',
      { cause: err },
    );
  }
}

const Database = load();

// The types, under the same names as `import Database from 'better-sqlite3'` gives, so that
// `Database.Database` and `Database.Statement` keep working for code that imports from here.
declare namespace Database {
  type Database = BetterSqlite3.Database;
  type Statement<BindParameters extends unknown[] | {} = unknown[], Result = unknown> = BetterSqlite3.Statement<BindParameters, Result>;
  type Options = BetterSqlite3.Options;
  type BackupMetadata = BetterSqlite3.BackupMetadata;
  type BackupOptions = BetterSqlite3.BackupOptions;
  type RunResult = BetterSqlite3.RunResult;
}

export default Database;
