/**
 * Every SQL text of the PostgreSQL backend, in one place: versioned migrations, the lock keys,
 * and the statements the store runs. Other modules of this backend (admin operations) add
 * their statements here and take the locks below in the documented order.
 *
 * Lock order, to keep transactions free of deadlocks:
 *   1. the kind's assignment lock (LOCK_KIND: first assignments of one kind are serialised).
 *      Every write of the sharder's own that changes counts takes it too (admin puts,
 *      deletes, moves, imports, count repairs), so that bucket_counts rows of a kind are only
 *      ever locked by the holder of its kind lock (or by hand-written SQL); a transaction that
 *      needs several kinds takes their locks in ascending key order (lockKinds);
 *   2. the change-feed lock (taken by every trigger that writes the feed: INSERT (since
 *      migration 3), UPDATE, DELETE, TRUNCATE, so that change
 *      ids are handed out in commit order and a reader reading "id > cursor" misses nothing);
 *   3. bucket_counts rows (updated by the triggers, always in (kind, bucket) order).
 */

import type { AuditQuery } from '../types.js';
import { auditQuery as buildAuditQuery, type AuditDialect, type Migration } from '../rules.js';

/** Advisory locks use the two-int form: (namespace, key). The namespaces spell "SH" + n. */
export const LOCK_NS_MIGRATIONS = 0x5348_0001;
export const LOCK_NS_CHANGES = 0x5348_0002;
export const LOCK_NS_KIND = 0x5348_0003;

/** An INSERT statement of more rows than this is announced as "the kind changed" (a reload), not row by row. */
export const FEED_BULK_ROWS = 10_000;

/** NOTIFY channel the triggers signal on; listeners then read the changes table. */
export const CHANGES_CHANNEL = 'sharder_changes';

/** The update trigger's counts statement (migrations 1 and 3): +1 per new row, -1 per old row. */
const UPDATED_COUNTS = `INSERT INTO bucket_counts AS c (kind, bucket, count)
          SELECT kind, bucket, sum(delta) FROM (
            SELECT kind, bucket, 1 AS delta FROM new_rows
            UNION ALL SELECT kind, bucket, -1 FROM old_rows
          ) d GROUP BY kind, bucket HAVING sum(delta) <> 0 ORDER BY kind, bucket
          ON CONFLICT (kind, bucket) DO UPDATE SET count = c.count + EXCLUDED.count;`;

/**
 * Versioned schema migrations; all pending ones run in one transaction under
 * LOCK_NS_MIGRATIONS, so that instances starting together create the schema once.
 *
 * Text columns use the "C" collation: names are compared and indexed byte for byte (`Alice`
 * and `alice` are two users), comparisons are cheaper, and an operating-system locale update
 * can never silently corrupt the indexes.
 *
 * The triggers are statement-level with transition tables: one counts update per statement,
 * however many rows (a batch of first assignments, a bulk import, a bucket migration), in the
 * same transaction as the rows they count, whatever wrote them (the sharder, an admin tool, or
 * hand-written SQL).
 */
export const POSTGRES_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'assignments, counts, change feed',
    sql: `
      CREATE TABLE assignments (
        kind text COLLATE "C" NOT NULL,
        name text COLLATE "C" NOT NULL,
        bucket text COLLATE "C" NOT NULL,
        assigned_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (kind, name)
      );
      CREATE INDEX assignments_by_bucket ON assignments (kind, bucket, name);

      CREATE TABLE bucket_counts (
        kind text COLLATE "C" NOT NULL,
        bucket text COLLATE "C" NOT NULL,
        count bigint NOT NULL,
        PRIMARY KEY (kind, bucket)
      );

      -- Moves and deletes, so that other instances can drop them from their caches. A row with
      -- an empty kind means "everything may have changed" (after a TRUNCATE).
      CREATE TABLE changes (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        kind text COLLATE "C" NOT NULL,
        name text COLLATE "C" NOT NULL,
        at timestamptz NOT NULL DEFAULT clock_timestamp()
      );
      CREATE INDEX changes_by_time ON changes (at);

      CREATE FUNCTION sharder_assignments_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO bucket_counts AS c (kind, bucket, count)
          SELECT kind, bucket, count(*) FROM new_rows GROUP BY kind, bucket ORDER BY kind, bucket
          ON CONFLICT (kind, bucket) DO UPDATE SET count = c.count + EXCLUDED.count;
        RETURN NULL;
      END $$;

      CREATE FUNCTION sharder_assignments_updated() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NOT EXISTS (SELECT 1 FROM old_rows) THEN RETURN NULL; END IF;
        PERFORM pg_advisory_xact_lock(${LOCK_NS_CHANGES}, 0);
        ${UPDATED_COUNTS}
        INSERT INTO changes (kind, name)
          SELECT kind, name FROM old_rows UNION SELECT kind, name FROM new_rows;
        PERFORM pg_notify('${CHANGES_CHANNEL}', '');
        RETURN NULL;
      END $$;

      CREATE FUNCTION sharder_assignments_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NOT EXISTS (SELECT 1 FROM old_rows) THEN RETURN NULL; END IF;
        PERFORM pg_advisory_xact_lock(${LOCK_NS_CHANGES}, 0);
        INSERT INTO bucket_counts AS c (kind, bucket, count)
          SELECT kind, bucket, -count(*) FROM old_rows GROUP BY kind, bucket ORDER BY kind, bucket
          ON CONFLICT (kind, bucket) DO UPDATE SET count = c.count + EXCLUDED.count;
        INSERT INTO changes (kind, name) SELECT kind, name FROM old_rows;
        PERFORM pg_notify('${CHANGES_CHANNEL}', '');
        RETURN NULL;
      END $$;

      CREATE FUNCTION sharder_assignments_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        PERFORM pg_advisory_xact_lock(${LOCK_NS_CHANGES}, 0);
        DELETE FROM bucket_counts;
        INSERT INTO changes (kind, name) VALUES ('', '');
        PERFORM pg_notify('${CHANGES_CHANNEL}', '');
        RETURN NULL;
      END $$;

      CREATE TRIGGER assignments_counts_insert AFTER INSERT ON assignments
        REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION sharder_assignments_inserted();
      CREATE TRIGGER assignments_counts_update AFTER UPDATE ON assignments
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
        FOR EACH STATEMENT EXECUTE FUNCTION sharder_assignments_updated();
      CREATE TRIGGER assignments_counts_delete AFTER DELETE ON assignments
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION sharder_assignments_deleted();
      CREATE TRIGGER assignments_counts_truncate AFTER TRUNCATE ON assignments
        FOR EACH STATEMENT EXECUTE FUNCTION sharder_assignments_truncated();
    `,
  },
  {
    version: 2,
    name: 'audit log',
    // The same columns and meaning as SQLite's migration 2. Written in the same transaction as
    // the change it records. `at` is the transaction's time, as assigned_at is.
    sql: `
      CREATE TABLE audit (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT now(),
        actor text NOT NULL,
        action text NOT NULL,
        kind text COLLATE "C" NOT NULL,
        name text COLLATE "C",
        from_bucket text COLLATE "C",
        to_bucket text COLLATE "C",
        reason text,
        batch text COLLATE "C"
      );
      CREATE INDEX audit_by_object ON audit (kind, name, id);
      CREATE INDEX audit_by_batch ON audit (batch, id) WHERE batch IS NOT NULL;
    `,
  },
  {
    version: 3,
    name: 'first assignments and buckets in the change feed',
    // Every instance keeps the whole table in memory (src/core/table.ts), so it must hear
    // of first assignments made elsewhere too, with their bucket: then an instance answers a
    // user another instance assigned even while the database is away. The feed row carries
    // the bucket after the change (NULL: deleted). The insert trigger now takes the feed lock
    // first, like the others, so the lock order (feed, then counts) holds for every writer.
    sql: `
      ALTER TABLE changes ADD COLUMN bucket text COLLATE "C";

      CREATE OR REPLACE FUNCTION sharder_assignments_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NOT EXISTS (SELECT 1 FROM new_rows) THEN RETURN NULL; END IF;
        PERFORM pg_advisory_xact_lock(${LOCK_NS_CHANGES}, 0);
        INSERT INTO bucket_counts AS c (kind, bucket, count)
          SELECT kind, bucket, count(*) FROM new_rows GROUP BY kind, bucket ORDER BY kind, bucket
          ON CONFLICT (kind, bucket) DO UPDATE SET count = c.count + EXCLUDED.count;
        -- A bulk load (an import, hand-written SQL) is one row per kind with an empty name:
        -- "read the kind again", cheaper for every instance than millions of feed rows.
        IF (SELECT count(*) FROM (SELECT 1 FROM new_rows LIMIT ${FEED_BULK_ROWS + 1}) s) > ${FEED_BULK_ROWS} THEN
          INSERT INTO changes (kind, name) SELECT DISTINCT kind, '' FROM new_rows;
        ELSE
          INSERT INTO changes (kind, name, bucket) SELECT kind, name, bucket FROM new_rows;
        END IF;
        PERFORM pg_notify('${CHANGES_CHANNEL}', '');
        RETURN NULL;
      END $$;

      CREATE OR REPLACE FUNCTION sharder_assignments_updated() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NOT EXISTS (SELECT 1 FROM old_rows) THEN RETURN NULL; END IF;
        PERFORM pg_advisory_xact_lock(${LOCK_NS_CHANGES}, 0);
        ${UPDATED_COUNTS}
        -- An object renamed by hand-written SQL: its old name is gone (NULL), its new one is on
        -- its bucket.
        INSERT INTO changes (kind, name, bucket)
          SELECT o.kind, o.name, n.bucket FROM old_rows o LEFT JOIN new_rows n ON n.kind = o.kind AND n.name = o.name
          UNION SELECT kind, name, bucket FROM new_rows;
        PERFORM pg_notify('${CHANGES_CHANNEL}', '');
        RETURN NULL;
      END $$;
    `,
  },
];

/** A timestamptz column as unix milliseconds (floor: a microsecond never rounds up into the
 * next millisecond, so an exported time imports back to the same millisecond). */
const ms = (col: string): string => `floor(extract(epoch FROM ${col}) * 1000)::bigint`;
/** Unix milliseconds (a bigint parameter) as timestamptz, exactly. */
const fromMs = (param: string): string => `('epoch'::timestamptz + ${param} * interval '1 millisecond')`;
const ASSIGNMENT = `kind, name, bucket, ${ms('assigned_at')} AS assigned_at`;
/** Names in byte order of their UTF-8 encoding (the database is UTF8), as SQLite orders them. */
const BY_NAME = 'ORDER BY name COLLATE "C"';

export const SQL = {
  // Migrations.
  migrationsTableExists: "SELECT to_regclass('schema_migrations') IS NOT NULL AS exists",
  migrationsTable:
    'CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz ' +
    'NOT NULL DEFAULT now())',
  lockMigrations: `SELECT pg_advisory_xact_lock(${LOCK_NS_MIGRATIONS}, 0)`,
  schemaVersion: 'SELECT coalesce(max(version), 0)::int AS version FROM schema_migrations',
  recordMigration: 'INSERT INTO schema_migrations (version, name) VALUES ($1, $2)',
  serverEncoding: 'SHOW server_encoding',

  // Assignment. The kind lock is a transaction-level advisory lock: released by COMMIT or
  // ROLLBACK, and by the server if the connection dies, so it can never be leaked.
  lockKind: `SELECT pg_advisory_xact_lock(${LOCK_NS_KIND}, hashtext($1))`,
  lookupMany: 'SELECT name, bucket FROM assignments WHERE kind = $1 AND name = ANY($2::text[])',
  /** Under the kind lock: which of the names exist, and the kind's counts (a few rows). */
  existingAndCounts: `
    SELECT name, bucket, NULL::bigint AS count FROM assignments WHERE kind = $1 AND name = ANY($2::text[])
    UNION ALL
    SELECT NULL, bucket, count FROM bucket_counts WHERE kind = $1`,
  insertMany:
    'INSERT INTO assignments (kind, name, bucket) SELECT $1, n, b FROM unnest($2::text[], $3::text[]) AS t(n, b)',
  counts: 'SELECT bucket, count FROM bucket_counts WHERE kind = $1 AND count <> 0',
  realCounts: 'SELECT bucket, count(*) AS count FROM assignments WHERE kind = $1 GROUP BY bucket',

  // Admin primitives. Lists and exports order by name in the "C" collation: byte order,
  // identical to SQLite's, so cursors and exports are the same on both backends.
  /** The kind locks of several kinds, in ascending key order (no deadlock between two such). */
  lockKinds:
    `SELECT pg_advisory_xact_lock(${LOCK_NS_KIND}, h) FROM (SELECT DISTINCT hashtext(k) AS h FROM ` +
    'unnest($1::text[]) AS k ORDER BY h) s',
  /** Taken up front by a transaction that may UPDATE or DELETE after an INSERT (lock order 2 before 3). */
  lockChanges: `SELECT pg_advisory_xact_lock(${LOCK_NS_CHANGES}, 0)`,
  get: `SELECT ${ASSIGNMENT} FROM assignments WHERE kind = $1 AND name = $2`,
  /** The object's bucket, row-locked until the transaction ends. */
  bucketForUpdate: 'SELECT bucket FROM assignments WHERE kind = $1 AND name = $2 FOR UPDATE',
  insertOne: 'INSERT INTO assignments (kind, name, bucket) VALUES ($1, $2, $3)',
  moveOne: 'UPDATE assignments SET bucket = $4, assigned_at = now() WHERE kind = $1 AND name = $2 AND bucket = $3',
  deleteOne: 'DELETE FROM assignments WHERE kind = $1 AND name = $2 AND bucket = $3',
  /** Conditional moves in one statement; answers the names moved. A null `to` is a NOT NULL
   * violation (IS DISTINCT FROM lets it through to the constraint), failing the batch. */
  moveMany: `
    UPDATE assignments a SET bucket = t.to_bucket, assigned_at = now()
    FROM unnest($2::text[], $3::text[], $4::text[]) AS t(name, from_bucket, to_bucket)
    WHERE a.kind = $1 AND a.name = t.name AND a.bucket = t.from_bucket AND t.from_bucket IS DISTINCT FROM t.to_bucket
    RETURNING a.name`,
  listFirst: `SELECT ${ASSIGNMENT} FROM assignments WHERE kind = $1 ${BY_NAME} LIMIT $2`,
  listAfter: `SELECT ${ASSIGNMENT} FROM assignments WHERE kind = $1 AND name > $2 COLLATE "C" ${BY_NAME} LIMIT $3`,
  listBucketFirst: `SELECT ${ASSIGNMENT} FROM assignments WHERE kind = $1 AND bucket = $2 ${BY_NAME} LIMIT $3`,
  listBucketAfter:
    `SELECT ${ASSIGNMENT} FROM assignments WHERE kind = $1 AND bucket = $2 AND name > $3 COLLATE "C" ${BY_NAME} ` +
    'LIMIT $4',
  /** The stored buckets of (kind, name) pairs, row-locked. */
  existingPairs: `
    SELECT a.kind, a.name, a.bucket FROM assignments a
    JOIN unnest($1::text[], $2::text[]) AS t(kind, name) ON a.kind = t.kind AND a.name = t.name
    FOR UPDATE OF a`,
  /** Rows to insert; a null time means now. */
  importInsert: `
    INSERT INTO assignments (kind, name, bucket, assigned_at)
    SELECT k, n, b, coalesce(${fromMs('at')}, now())
    FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS t(k, n, b, at)`,
  importUpdate: `
    UPDATE assignments a SET bucket = t.b, assigned_at = coalesce(${fromMs('t.at')}, now())
    FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS t(k, n, b, at)
    WHERE a.kind = t.k AND a.name = t.n`,
  /** Audit entries, ids in the order given. */
  auditMany: `
    INSERT INTO audit (actor, action, batch, kind, name, from_bucket, to_bucket, reason)
    SELECT $1, $2, $3, k, n, f, t, r
    FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) WITH ORDINALITY AS u(k, n, f, t, r, o)
    ORDER BY o`,
  /** Loose index scan over the primary key: one probe per kind, however many rows. */
  kinds: `
    WITH RECURSIVE k AS (
      (SELECT kind FROM assignments ORDER BY kind LIMIT 1)
      UNION ALL
      SELECT (SELECT a.kind FROM assignments a WHERE a.kind > k.kind ORDER BY a.kind LIMIT 1)
      FROM k WHERE k.kind IS NOT NULL
    )
    SELECT kind FROM k WHERE kind IS NOT NULL ORDER BY kind`,
  /** Kinds with counts kept or assignments stored (what a repair of every kind must lock). */
  countedKinds: 'SELECT DISTINCT kind FROM bucket_counts',
  allCounts: 'SELECT kind, bucket, count FROM bucket_counts WHERE $1::text IS NULL OR kind = $1 FOR UPDATE',
  allRealCounts:
    'SELECT kind, bucket, count(*) AS count FROM assignments WHERE $1::text IS NULL OR kind = $1 GROUP BY kind, bucket',
  setCount:
    'INSERT INTO bucket_counts AS c (kind, bucket, count) VALUES ($1, $2, $3) ON CONFLICT (kind, bucket) DO ' +
    'UPDATE SET count = EXCLUDED.count',
  duplicates: 'SELECT kind, name, count(*) AS rows FROM assignments GROUP BY kind, name HAVING count(*) > 1 LIMIT $1',

  // Change feed.
  listen: `LISTEN ${CHANGES_CHANNEL}`,
  /** The newest id, and whether the row at the reader's cursor is still there. */
  feedState: 'SELECT (SELECT max(id) FROM changes) AS last, EXISTS (SELECT 1 FROM changes WHERE id = $1) AS here',
  changesSince: 'SELECT id, kind, name, bucket FROM changes WHERE id > $1 ORDER BY id LIMIT $2',
  /**
   * Deletes feed rows older than the retention, always a prefix by id and never the newest
   * row, so that "the row at my cursor is gone" reliably means "I fell behind the pruning".
   */
  pruneChanges:
    `DELETE FROM changes WHERE id < (SELECT max(id) FROM changes WHERE at < now() - $1 * interval '1 ` +
    `millisecond')`,
} as const;

const AUDIT: AuditDialect = {
  param: (n) => `$${n}`,
  since: (p) => `at >= ${fromMs(p)}`,
  select: `SELECT id, ${ms('at')} AS at, actor, action, kind, name, from_bucket, to_bucket, reason, batch FROM audit`,
};

/** The audit query for the filters given (store/rules.ts), in PostgreSQL's dialect. */
export function auditQuery(q: AuditQuery): { text: string; values: unknown[] } {
  return buildAuditQuery(q, AUDIT);
}
