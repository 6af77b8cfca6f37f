/**
 * Every SQL text of the PostgreSQL backend, in one place: versioned migrations, the lock keys,
 * and the statements the store runs. Other modules of this backend (admin operations) add
 * their statements here and take the locks below in the documented order.
 *
 * Lock order, to keep transactions free of deadlocks:
 *   1. the kind's assignment lock (LOCK_KIND: first assignments of one kind are serialised);
 *   2. the change-feed lock (taken by the UPDATE/DELETE/TRUNCATE triggers, so that change
 *      ids are handed out in commit order and a reader reading "id > cursor" misses nothing);
 *   3. bucket_counts rows (updated by the triggers, always in (kind, bucket) order).
 */

/** Advisory locks use the two-int form: (namespace, key). The namespaces spell "SH" + n. */
export const LOCK_NS_MIGRATIONS = 0x5348_0001;
export const LOCK_NS_CHANGES = 0x5348_0002;
export const LOCK_NS_KIND = 0x5348_0003;

/** NOTIFY channel the triggers signal on; listeners then read the changes table. */
export const CHANGES_CHANNEL = 'sharder_changes';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

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
        INSERT INTO bucket_counts AS c (kind, bucket, count)
          SELECT kind, bucket, sum(delta) FROM (
            SELECT kind, bucket, 1 AS delta FROM new_rows
            UNION ALL SELECT kind, bucket, -1 FROM old_rows
          ) d GROUP BY kind, bucket HAVING sum(delta) <> 0 ORDER BY kind, bucket
          ON CONFLICT (kind, bucket) DO UPDATE SET count = c.count + EXCLUDED.count;
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
        REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION sharder_assignments_updated();
      CREATE TRIGGER assignments_counts_delete AFTER DELETE ON assignments
        REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION sharder_assignments_deleted();
      CREATE TRIGGER assignments_counts_truncate AFTER TRUNCATE ON assignments
        FOR EACH STATEMENT EXECUTE FUNCTION sharder_assignments_truncated();
    `,
  },
];

export const SQL = {
  // Migrations.
  migrationsTableExists: "SELECT to_regclass('schema_migrations') IS NOT NULL AS exists",
  migrationsTable: 'CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
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
  insertMany: 'INSERT INTO assignments (kind, name, bucket) SELECT $1, n, b FROM unnest($2::text[], $3::text[]) AS t(n, b)',
  counts: 'SELECT bucket, count FROM bucket_counts WHERE kind = $1 AND count <> 0',
  realCounts: 'SELECT bucket, count(*) AS count FROM assignments WHERE kind = $1 GROUP BY bucket',

  // Change feed.
  listen: `LISTEN ${CHANGES_CHANNEL}`,
  /** The newest id, and whether the row at the reader's cursor is still there. */
  feedState: 'SELECT (SELECT max(id) FROM changes) AS last, EXISTS (SELECT 1 FROM changes WHERE id = $1) AS here',
  changesSince: 'SELECT id, kind, name FROM changes WHERE id > $1 ORDER BY id LIMIT $2',
  /**
   * Deletes feed rows older than the retention, always a prefix by id and never the newest
   * row, so that "the row at my cursor is gone" reliably means "I fell behind the pruning".
   */
  pruneChanges: `DELETE FROM changes WHERE id < (SELECT max(id) FROM changes WHERE at < now() - $1 * interval '1 millisecond')`,
} as const;
