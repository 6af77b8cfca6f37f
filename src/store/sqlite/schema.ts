/**
 * Every SQL text of the SQLite backend, in one place: the versioned migrations and the
 * prepared statements the store and its admin transactions (admin.ts) run.
 */
import type Database from 'better-sqlite3';
import { pendingMigrations, type AssignmentRow, type Migration } from '../rules.js';
import type { DuplicateObject } from '../types.js';

/** Versioned schema migrations; each runs once, in order, in its own transaction. */
export const SQLITE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'assignments, counts, change feed',
    sql: `
      CREATE TABLE assignments (
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        bucket TEXT NOT NULL,
        assigned_at INTEGER NOT NULL, -- unix milliseconds
        PRIMARY KEY (kind, name)
      ) WITHOUT ROWID;
      CREATE INDEX assignments_by_bucket ON assignments (kind, bucket, name);

      CREATE TABLE bucket_counts (
        kind TEXT NOT NULL,
        bucket TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (kind, bucket)
      ) WITHOUT ROWID;

      -- Moves and deletes, so that other processes can drop them from their caches.
      CREATE TABLE changes (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        at INTEGER NOT NULL
      );

      CREATE TRIGGER assignments_count_insert AFTER INSERT ON assignments BEGIN
        INSERT INTO bucket_counts (kind, bucket, count) VALUES (NEW.kind, NEW.bucket, 1)
          ON CONFLICT (kind, bucket) DO UPDATE SET count = count + 1;
      END;
      CREATE TRIGGER assignments_count_delete AFTER DELETE ON assignments BEGIN
        UPDATE bucket_counts SET count = count - 1 WHERE kind = OLD.kind AND bucket = OLD.bucket;
        INSERT INTO changes (kind, name, at) VALUES (OLD.kind, OLD.name, CAST(unixepoch('subsec') * 1000 AS INTEGER));
      END;
      CREATE TRIGGER assignments_count_update AFTER UPDATE OF kind, name, bucket ON assignments BEGIN
        UPDATE bucket_counts SET count = count - 1 WHERE kind = OLD.kind AND bucket = OLD.bucket;
        INSERT INTO bucket_counts (kind, bucket, count) VALUES (NEW.kind, NEW.bucket, 1)
          ON CONFLICT (kind, bucket) DO UPDATE SET count = count + 1;
        INSERT INTO changes (kind, name, at) VALUES (OLD.kind, OLD.name, CAST(unixepoch('subsec') * 1000 AS INTEGER));
      END;
    `,
  },
  {
    version: 2,
    name: 'audit log',
    sql: `
      -- Every explicit assignment, move, delete, migration and import, written in the same
      -- transaction as the change itself.
      CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL, -- unix milliseconds
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        kind TEXT NOT NULL,
        name TEXT,
        from_bucket TEXT,
        to_bucket TEXT,
        reason TEXT,
        batch TEXT
      );
      CREATE INDEX audit_by_object ON audit (kind, name, id);
      CREATE INDEX audit_by_batch ON audit (batch, id) WHERE batch IS NOT NULL;
    `,
  },
];

const ASSIGNMENT_COLUMNS = 'kind, name, bucket, assigned_at';

/** The statements of a store, prepared once per connection. */
/** Parameters of a list statement, in the order listPage() gives them. */
type ListParams = (string | number)[];

export function prepareStatements(db: Database.Database) {
  return {
    lookup: db.prepare<[string, string], { bucket: string }>(
      'SELECT bucket FROM assignments WHERE kind = ? AND name = ?',
    ),
    counts: db.prepare<[string], { bucket: string; count: number }>(
      'SELECT bucket, count FROM bucket_counts WHERE kind = ?',
    ),
    realCounts: db.prepare<[string], { bucket: string; count: number }>(
      'SELECT bucket, COUNT(*) AS count FROM assignments WHERE kind = ? GROUP BY bucket',
    ),
    insert: db.prepare<[string, string, string, number]>(
      'INSERT INTO assignments (kind, name, bucket, assigned_at) VALUES (?, ?, ?, ?)',
    ),
    dataVersion: db.prepare<[], { data_version: number }>('PRAGMA data_version'),
    lastChange: db.prepare<[], { id: number | null }>('SELECT MAX(id) AS id FROM changes'),
    firstChange: db.prepare<[], { id: number | null }>('SELECT MIN(id) AS id FROM changes'),
    changesSince: db.prepare<[number], { id: number; kind: string; name: string }>(
      'SELECT id, kind, name FROM changes WHERE id > ? ORDER BY id LIMIT 10000',
    ),
    pruneChanges: db.prepare<[number]>('DELETE FROM changes WHERE at < ?'),
    get: db.prepare<[string, string], AssignmentRow>(
      `SELECT ${ASSIGNMENT_COLUMNS} FROM assignments WHERE kind = ? AND name = ?`,
    ),
    move: db.prepare<[string, number, string, string, string]>(
      'UPDATE assignments SET bucket = ?, assigned_at = ? WHERE kind = ? AND name = ? AND bucket = ?',
    ),
    remove: db.prepare<[string, string, string]>('DELETE FROM assignments WHERE kind = ? AND name = ? AND bucket = ?'),
    audit: db.prepare<
      [number, string, string, string, string | null, string | null, string | null, string | null, string | null]
    >(
      'INSERT INTO audit (at, actor, action, kind, name, from_bucket, to_bucket, reason, batch) VALUES (?, ?, ' +
        '?, ?, ?, ?, ?, ?, ?)',
    ),
    // The list statements' parameters are chosen by listPage() in store/rules.ts, one home for all backends.
    listFirst: db.prepare<ListParams, AssignmentRow>(
      `SELECT ${ASSIGNMENT_COLUMNS} FROM assignments WHERE kind = ? ORDER BY name LIMIT ?`,
    ),
    listAfter: db.prepare<ListParams, AssignmentRow>(
      `SELECT ${ASSIGNMENT_COLUMNS} FROM assignments WHERE kind = ? AND name > ? ORDER BY name LIMIT ?`,
    ),
    listBucketFirst: db.prepare<ListParams, AssignmentRow>(
      `SELECT ${ASSIGNMENT_COLUMNS} FROM assignments WHERE kind = ? AND bucket = ? ORDER BY name LIMIT ?`,
    ),
    listBucketAfter: db.prepare<ListParams, AssignmentRow>(
      `SELECT ${ASSIGNMENT_COLUMNS} FROM assignments WHERE kind = ? AND bucket = ? AND name > ? ORDER BY name LIMIT ?`,
    ),
    // Skip-scan over the primary key: one index probe per kind, however many rows.
    firstKind: db.prepare<[], { kind: string }>('SELECT kind FROM assignments ORDER BY kind LIMIT 1'),
    nextKind: db.prepare<[string], { kind: string }>(
      'SELECT kind FROM assignments WHERE kind > ? ORDER BY kind LIMIT 1',
    ),
    allCounts: db.prepare<[], { kind: string; bucket: string; count: number }>(
      'SELECT kind, bucket, count FROM bucket_counts',
    ),
    allRealCounts: db.prepare<[], { kind: string; bucket: string; count: number }>(
      'SELECT kind, bucket, COUNT(*) AS count FROM assignments GROUP BY kind, bucket',
    ),
    setCount: db.prepare<[string, string, number]>(
      'INSERT INTO bucket_counts (kind, bucket, count) VALUES (?, ?, ?) ON CONFLICT (kind, bucket) DO UPDATE ' +
        'SET count = excluded.count',
    ),
    select1: db.prepare('SELECT 1'),
    duplicates: db.prepare<[number], DuplicateObject>(
      'SELECT kind, name, COUNT(*) AS rows FROM assignments GROUP BY kind, name HAVING COUNT(*) > 1 LIMIT ?',
    ),
  };
}

export type Statements = ReturnType<typeof prepareStatements>;

/**
 * Applies pending migrations in one IMMEDIATE transaction: the write lock serialises processes
 * that start at the same moment.
 */
export function migrate(db: Database.Database): void {
  db.exec(
    'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at ' +
      'INTEGER NOT NULL)',
  );
  db.transaction(() => {
    const current =
      (db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0;
    for (const m of pendingMigrations(SQLITE_MIGRATIONS, current)) {
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
        m.version,
        m.name,
        Date.now(),
      );
    }
  }).immediate();
}
