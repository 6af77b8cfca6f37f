/**
 * Every SQL text of the MariaDB/MySQL backend, in one place: versioned migrations and the
 * statements the store and its admin transactions (admin.ts) run.
 *
 * Text columns use a binary, no-pad collation (MariaDB's utf8mb4_nopad_bin, MySQL 8's
 * utf8mb4_0900_bin): names compare and sort by code point, which is the byte order of their
 * UTF-8 encoding (as SQLite and PostgreSQL's "C" order them, so pages and exports agree), and
 * `alice` and `alice ` are two users (a PAD SPACE collation would make them one).
 *
 * Lock order, to keep transactions free of deadlocks:
 *   1. the kind's row in `kinds` (SELECT … FOR UPDATE): first assignments of one kind are
 *      serialised, and every write of the sharder's own that changes counts takes it too, so
 *      that bucket_counts rows of a kind are only locked by the holder of its kind row; a
 *      transaction that needs several kinds locks their rows in one statement, in key order;
 *   2. the change-feed row (`feed_lock`), taken by the BEFORE triggers of every write to
 *      assignments, so that change ids are handed out in commit order and a reader reading
 *      "id > cursor" misses nothing;
 *   3. bucket_counts rows (updated by the AFTER triggers).
 *
 * Names are at most 700 characters (the primary key (kind, name) must fit InnoDB's 3072
 * bytes at 4 bytes a character).
 */
import { auditQuery as buildAuditQuery, type AuditDialect, type Migration } from '../rules.js';
import type { AuditQuery } from '../types.js';

/** The collation placeholder of the migrations, replaced by the server's binary no-pad collation. */
export const COLLATION = '{{collation}}';

/** The binary no-pad collation of the server (VERSION() names MariaDB in its text). */
export const collationFor = (version: string): string =>
  /mariadb/i.test(version) ? 'utf8mb4_nopad_bin' : 'utf8mb4_0900_bin';

/** Unix milliseconds now, on the server (one clock for every instance). */
export const NOW_MS = 'CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)';

const TABLE = `ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=${COLLATION}`;

/** Versioned migrations; each runs once, in order, under GET_LOCK (DDL commits implicitly in MySQL). */
export const MARIADB_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'assignments, counts, change feed, audit log',
    sql: `
      CREATE TABLE kinds (
        kind VARCHAR(63) NOT NULL PRIMARY KEY
      ) ${TABLE};
      CREATE TABLE assignments (
        kind VARCHAR(63) NOT NULL,
        name VARCHAR(700) NOT NULL,
        bucket VARCHAR(63) NOT NULL,
        assigned_at BIGINT NOT NULL,
        PRIMARY KEY (kind, name),
        -- InnoDB appends the primary key, so this orders a bucket's objects by name too.
        KEY assignments_by_bucket (kind, bucket)
      ) ${TABLE};
      CREATE TABLE bucket_counts (
        kind VARCHAR(63) NOT NULL,
        bucket VARCHAR(63) NOT NULL,
        count BIGINT NOT NULL,
        PRIMARY KEY (kind, bucket)
      ) ${TABLE};
      CREATE TABLE changes (
        id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        kind VARCHAR(63) NOT NULL,
        name VARCHAR(700) NOT NULL,
        bucket VARCHAR(63) NULL,
        at BIGINT NOT NULL,
        KEY changes_by_time (at)
      ) ${TABLE};
      CREATE TABLE feed_lock (id TINYINT NOT NULL PRIMARY KEY) ${TABLE};
      INSERT INTO feed_lock VALUES (1);
      CREATE TABLE audit (
        id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        at BIGINT NOT NULL,
        actor VARCHAR(255) NOT NULL,
        action VARCHAR(16) NOT NULL,
        kind VARCHAR(63) NOT NULL,
        name VARCHAR(700) NULL,
        from_bucket VARCHAR(63) NULL,
        to_bucket VARCHAR(63) NULL,
        reason TEXT NULL,
        batch VARCHAR(255) NULL,
        KEY audit_by_object (kind, name, id),
        KEY audit_by_batch (batch, id)
      ) ${TABLE};
      CREATE TRIGGER assignments_feed_insert BEFORE INSERT ON assignments FOR EACH ROW
        SELECT id INTO @sharder_feed FROM feed_lock WHERE id = 1 FOR UPDATE;
      CREATE TRIGGER assignments_feed_update BEFORE UPDATE ON assignments FOR EACH ROW
        SELECT id INTO @sharder_feed FROM feed_lock WHERE id = 1 FOR UPDATE;
      CREATE TRIGGER assignments_feed_delete BEFORE DELETE ON assignments FOR EACH ROW
        SELECT id INTO @sharder_feed FROM feed_lock WHERE id = 1 FOR UPDATE;
      CREATE TRIGGER assignments_count_insert AFTER INSERT ON assignments FOR EACH ROW BEGIN
        INSERT INTO bucket_counts (kind, bucket, count) VALUES (NEW.kind, NEW.bucket, 1)
          ON DUPLICATE KEY UPDATE count = count + 1;
        INSERT INTO changes (kind, name, bucket, at) VALUES (NEW.kind, NEW.name, NEW.bucket, ${NOW_MS});
      END;
      CREATE TRIGGER assignments_count_update AFTER UPDATE ON assignments FOR EACH ROW BEGIN
        IF NEW.kind <> OLD.kind OR NEW.name <> OLD.name OR NEW.bucket <> OLD.bucket THEN
          UPDATE bucket_counts SET count = count - 1 WHERE kind = OLD.kind AND bucket = OLD.bucket;
          INSERT INTO bucket_counts (kind, bucket, count) VALUES (NEW.kind, NEW.bucket, 1)
          ON DUPLICATE KEY UPDATE count = count + 1;
          INSERT INTO changes (kind, name, bucket, at)
            VALUES (OLD.kind, OLD.name, IF(NEW.kind = OLD.kind AND NEW.name = OLD.name, NEW.bucket, NULL), ${NOW_MS});
        END IF;
      END;
      CREATE TRIGGER assignments_count_delete AFTER DELETE ON assignments FOR EACH ROW BEGIN
        UPDATE bucket_counts SET count = count - 1 WHERE kind = OLD.kind AND bucket = OLD.bucket;
        INSERT INTO changes (kind, name, bucket, at) VALUES (OLD.kind, OLD.name, NULL, ${NOW_MS});
      END;
    `,
  },
];

const ASSIGNMENT = 'kind, name, bucket, assigned_at';

export const SQL = {
  // Migrations: GET_LOCK is held by the migrating connection until RELEASE_LOCK or its end.
  lockMigrations: "SELECT GET_LOCK('sharder_migrations', ?) AS got",
  unlockMigrations: "SELECT RELEASE_LOCK('sharder_migrations')",
  migrationsTable:
    'CREATE TABLE IF NOT EXISTS schema_migrations (version INT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT ' +
    'NULL, applied_at BIGINT NOT NULL) ENGINE=InnoDB',
  schemaVersion: 'SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations',
  recordMigration: `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ${NOW_MS})`,
  version: 'SELECT VERSION() AS version',

  // Assignment.
  /** Makes sure a kind has its lock row (autocommit, before the transaction that locks it). */
  addKinds: 'INSERT IGNORE INTO kinds (kind) VALUES ?',
  /** The kind rows, locked in key order, and the server's clock. */
  lockKinds: `SELECT kind, ${NOW_MS} AS now FROM kinds WHERE kind IN (?) ORDER BY kind FOR UPDATE`,
  lookupMany: 'SELECT name, bucket FROM assignments WHERE kind = ? AND name IN (?)',
  countsOf: 'SELECT bucket, count FROM bucket_counts WHERE kind = ?',
  insertMany: 'INSERT INTO assignments (kind, name, bucket, assigned_at) VALUES ?',
  counts: 'SELECT bucket, count FROM bucket_counts WHERE kind = ? AND count <> 0',
  realCounts: 'SELECT bucket, COUNT(*) AS count FROM assignments WHERE kind = ? GROUP BY bucket',

  // Admin primitives.
  get: `SELECT ${ASSIGNMENT} FROM assignments WHERE kind = ? AND name = ?`,
  bucketForUpdate: 'SELECT bucket FROM assignments WHERE kind = ? AND name = ? FOR UPDATE',
  moveOne: 'UPDATE assignments SET bucket = ?, assigned_at = ? WHERE kind = ? AND name = ? AND bucket = ?',
  deleteOne: 'DELETE FROM assignments WHERE kind = ? AND name = ? AND bucket = ?',
  listFirst: `SELECT ${ASSIGNMENT} FROM assignments WHERE kind = ? ORDER BY name LIMIT ?`,
  listAfter: `SELECT ${ASSIGNMENT} FROM assignments WHERE kind = ? AND name > ? ORDER BY name LIMIT ?`,
  listBucketFirst: `SELECT ${ASSIGNMENT} FROM assignments WHERE kind = ? AND bucket = ? ORDER BY name LIMIT ?`,
  listBucketAfter:
    `SELECT ${ASSIGNMENT} FROM assignments WHERE kind = ? AND bucket = ? AND name > ?` + ' ORDER BY name LIMIT ?',
  /** The stored buckets of (kind, name) pairs, row-locked. */
  existingPairs: 'SELECT kind, name, bucket FROM assignments WHERE (kind, name) IN (?) FOR UPDATE',
  auditMany: 'INSERT INTO audit (at, actor, action, kind, name, from_bucket, to_bucket, reason, batch) VALUES ?',
  /** Loose index scan over the primary key: one probe per kind. */
  firstKind: 'SELECT kind FROM assignments ORDER BY kind LIMIT 1',
  nextKind: 'SELECT kind FROM assignments WHERE kind > ? ORDER BY kind LIMIT 1',
  countedKinds: 'SELECT DISTINCT kind FROM bucket_counts',
  allCounts: 'SELECT kind, bucket, count FROM bucket_counts WHERE ? IS NULL OR kind = ? FOR UPDATE',
  allRealCounts:
    'SELECT kind, bucket, COUNT(*) AS count FROM assignments WHERE ? IS NULL OR kind = ? GROUP BY kind, bucket',
  lockFeed: 'SELECT id FROM feed_lock WHERE id = 1 FOR UPDATE',
  setCount:
    'INSERT INTO bucket_counts (kind, bucket, count) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE count = VALUES(count)',
  duplicates: 'SELECT kind, name, COUNT(*) AS `rows` FROM assignments GROUP BY kind, name HAVING COUNT(*) > 1 LIMIT ?',

  // Change feed.
  lastChange: 'SELECT COALESCE(MAX(id), 0) AS id FROM changes',
  changesSince: 'SELECT id, kind, name, bucket FROM changes WHERE id > ? ORDER BY id LIMIT ?',
  changeExists: 'SELECT COUNT(*) AS here FROM changes WHERE id = ?',
  /** Rows older than the retention, never the newest (so "my cursor's row is gone" means "I fell behind"). */
  pruneChanges: 'DELETE FROM changes WHERE id < (SELECT m FROM (SELECT MAX(id) AS m FROM changes WHERE at < ?) t)',

  readOnly: 'SELECT @@global.read_only AS ro',
} as const;

const AUDIT: AuditDialect = {
  param: () => '?',
  since: (p) => `at >= ${p}`,
  select: 'SELECT id, at, actor, action, kind, name, from_bucket, to_bucket, reason, batch FROM audit',
};

/** The audit query for the filters given (store/rules.ts), in MariaDB's dialect. */
export function auditQuery(q: AuditQuery): { text: string; values: unknown[] } {
  return buildAuditQuery(q, AUDIT);
}
