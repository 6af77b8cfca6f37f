/**
 * SQLite backend (better-sqlite3), the embedded default. WAL lets the server and CLI processes
 * share the file; `BEGIN IMMEDIATE` takes the write lock before reading the counts, so first
 * assignments are serialised across processes and each one is emptiest when it commits.
 * Counts are maintained by triggers in the same transaction as the row they count, so no code
 * path (assign, move, delete, import, even a hand-written UPDATE) can make them drift.
 */
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from './sqlite-driver.js';
import { chooseBucket, type BucketPolicyInput } from '../core/policy.js';
import { NoBucketError, SchemaTooNewError, ShardError, StoreUnavailableError } from '../errors.js';
import type { AssignResult, ChangeListener, Store } from './types.js';

/** Versioned schema migrations; each runs once, in order, in its own transaction. */
export const SQLITE_MIGRATIONS: ReadonlyArray<{ version: number; name: string; sql: string }> = [
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
];

/** Change-feed rows older than this are pruned; a reader further behind drops its whole cache. */
const CHANGES_RETENTION_MS = 24 * 3600 * 1000;

/** Driver errors that mean "the store cannot serve now" rather than a bug. */
const UNAVAILABLE_CODES = /^SQLITE_(BUSY|LOCKED|FULL|IOERR|READONLY|CANTOPEN|CORRUPT|NOTADB|PROTOCOL|PERM|AUTH)/;

function convert(err: unknown): unknown {
  if (err instanceof ShardError) return err;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && UNAVAILABLE_CODES.test(code)) {
    return new StoreUnavailableError(`SQLite store unavailable (${code}): ${(err as Error).message}`, { cause: err });
  }
  return err;
}

export interface SqliteOptions {
  path: string;
  busyTimeoutMs: number;
  /** Clock for assigned_at; injected for tests. */
  now?: () => number;
}

export class SqliteStore implements Store {
  readonly backend = 'sqlite';
  readonly location: string;
  private readonly db: Database.Database;
  private readonly now: () => number;
  private readonly stmts;
  private readonly assignTx: (kind: string, name: string, buckets: readonly BucketPolicyInput[]) => AssignResult;
  private closed = false;

  private constructor(db: Database.Database, location: string, now: () => number) {
    this.db = db;
    this.location = location;
    this.now = now;
    this.stmts = {
      lookup: db.prepare<[string, string], { bucket: string }>('SELECT bucket FROM assignments WHERE kind = ? AND name = ?'),
      counts: db.prepare<[string], { bucket: string; count: number }>('SELECT bucket, count FROM bucket_counts WHERE kind = ?'),
      realCounts: db.prepare<[string], { bucket: string; count: number }>('SELECT bucket, COUNT(*) AS count FROM assignments WHERE kind = ? GROUP BY bucket'),
      insert: db.prepare<[string, string, string, number]>('INSERT INTO assignments (kind, name, bucket, assigned_at) VALUES (?, ?, ?, ?)'),
      dataVersion: db.prepare<[], { data_version: number }>('PRAGMA data_version'),
      lastChange: db.prepare<[], { id: number | null }>('SELECT MAX(id) AS id FROM changes'),
      firstChange: db.prepare<[], { id: number | null }>('SELECT MIN(id) AS id FROM changes'),
      changesSince: db.prepare<[number], { id: number; kind: string; name: string }>('SELECT id, kind, name FROM changes WHERE id > ? ORDER BY id LIMIT 10000'),
      pruneChanges: db.prepare<[number]>('DELETE FROM changes WHERE at < ?'),
    };
    this.assignTx = db.transaction((kind: string, name: string, buckets: readonly BucketPolicyInput[]): AssignResult => {
      const existing = this.stmts.lookup.get(kind, name);
      if (existing) return { bucket: existing.bucket, created: false };
      const counts = new Map<string, number>();
      for (const row of this.stmts.counts.all(kind)) counts.set(row.bucket, row.count);
      const bucket = chooseBucket(buckets, counts);
      if (bucket === undefined) throw new NoBucketError(kind);
      this.stmts.insert.run(kind, name, bucket, this.now());
      return { bucket, created: true };
    }).immediate;
  }

  /** Opens (creating the file and its folder if needed) and migrates the database. */
  static open(opts: SqliteOptions): SqliteStore {
    const location = opts.path === ':memory:' ? ':memory:' : resolve(opts.path);
    let db: Database.Database;
    try {
      if (location !== ':memory:') mkdirSync(dirname(location), { recursive: true });
      db = new Database(location, { timeout: opts.busyTimeoutMs });
      db.pragma('journal_mode = WAL');
      // FULL: an assignment the sharder has answered must survive a power cut, not only a crash.
      db.pragma('synchronous = FULL');
      db.pragma(`busy_timeout = ${Math.trunc(opts.busyTimeoutMs)}`);
      migrate(db);
    } catch (err) {
      const c = convert(err);
      if (c instanceof ShardError) throw c;
      throw new StoreUnavailableError(`cannot open SQLite database ${location}: ${(err as Error).message}`, { cause: err });
    }
    return new SqliteStore(db, location, opts.now ?? Date.now);
  }

  private run<T>(fn: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new StoreUnavailableError('the SQLite store is closed'));
    try {
      return Promise.resolve(fn());
    } catch (err) {
      return Promise.reject(convert(err));
    }
  }

  lookup(kind: string, name: string): Promise<string | undefined> {
    return this.run(() => this.stmts.lookup.get(kind, name)?.bucket);
  }

  assign(kind: string, name: string, buckets: readonly BucketPolicyInput[]): Promise<AssignResult> {
    return this.run(() => this.assignTx(kind, name, buckets));
  }

  counts(kind: string): Promise<Map<string, number>> {
    return this.run(() => new Map(this.stmts.counts.all(kind).filter((r) => r.count !== 0).map((r) => [r.bucket, r.count])));
  }

  realCounts(kind: string): Promise<Map<string, number>> {
    return this.run(() => new Map(this.stmts.realCounts.all(kind).map((r) => [r.bucket, r.count])));
  }

  /**
   * Polls PRAGMA data_version (changes only when another connection commits, and costs no
   * I/O) and, when it moved, reads the change feed past the last id seen.
   */
  watch(listener: ChangeListener, pollMs: number): () => void {
    let version = this.stmts.dataVersion.get()!.data_version;
    let cursor = this.stmts.lastChange.get()!.id ?? 0;
    let lastPrune = 0;
    const poll = (): void => {
      if (this.closed) return;
      try {
        const v = this.stmts.dataVersion.get()!.data_version;
        if (v === version) return;
        version = v;
        const first = this.stmts.firstChange.get()!.id;
        if (first !== null && first > cursor + 1) {
          // Rows we never saw were pruned: we cannot know what changed.
          listener(null, null);
        }
        for (;;) {
          const rows = this.stmts.changesSince.all(cursor);
          for (const r of rows) listener(r.kind, r.name);
          if (rows.length > 0) cursor = rows.at(-1)!.id;
          if (rows.length < 10000) break;
        }
        const now = this.now();
        if (now - lastPrune > 3600_000) {
          lastPrune = now;
          this.stmts.pruneChanges.run(now - CHANGES_RETENTION_MS);
        }
      } catch {
        // A busy or unavailable store is retried at the next tick; ping() reports it.
      }
    };
    const timer = setInterval(poll, pollMs);
    timer.unref();
    return () => clearInterval(timer);
  }

  ping(): Promise<void> {
    return this.run(() => {
      this.db.prepare('SELECT 1').get();
    });
  }

  /** The database handle, for other modules of this backend (operations, backup). */
  get handle(): Database.Database {
    return this.db;
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.db.close();
    }
    return Promise.resolve();
  }
}

function migrate(db: Database.Database): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  const known = SQLITE_MIGRATIONS.at(-1)!.version;
  // IMMEDIATE: the write lock serialises processes that start at the same moment.
  db.transaction(() => {
    const current = (db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0;
    if (current > known) throw new SchemaTooNewError(current, known);
    for (const m of SQLITE_MIGRATIONS) {
      if (m.version <= current) continue;
      db.exec(m.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
    }
  }).immediate();
}
