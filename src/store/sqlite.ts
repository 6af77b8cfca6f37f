/**
 * SQLite backend (better-sqlite3), the embedded default. WAL lets the server and CLI processes
 * share the file; `BEGIN IMMEDIATE` takes the write lock before reading the counts, so first
 * assignments are serialised across processes and each one is emptiest when it commits.
 * Counts are maintained by triggers in the same transaction as the row they count, so no code
 * path (assign, move, delete, import, even a hand-written UPDATE) can make them drift.
 */
import { chmodSync, closeSync, fchmodSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { chooseBucket, type BucketPolicyInput } from '../core/policy.js';
import { ConflictError, NoBucketError, SchemaTooNewError, ShardError, StoreUnavailableError } from '../errors.js';
import type {
  AssignResult, Assignment, AuditAction, AuditContext, AuditEntry, AuditQuery, ChangeListener, CountFix, DuplicateObject,
  ImportBatchResult, ImportConflict, ImportRow, MoveBatchResult, MoveRequest, PutResult, Store,
} from './types.js';
import { exportByPages } from './export.js';
import { WriteHealth } from './write-health.js';

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

interface AssignmentRow {
  kind: string;
  name: string;
  bucket: string;
  assigned_at: number;
}

interface AuditRow {
  id: number;
  at: number;
  actor: string;
  action: AuditAction;
  kind: string;
  name: string | null;
  from_bucket: string | null;
  to_bucket: string | null;
  reason: string | null;
  batch: string | null;
}

const toAssignment = (r: AssignmentRow): Assignment => ({ kind: r.kind, name: r.name, bucket: r.bucket, assignedAt: r.assigned_at });

const toAuditEntry = (r: AuditRow): AuditEntry => ({
  id: r.id, at: r.at, actor: r.actor, action: r.action, kind: r.kind, name: r.name,
  from: r.from_bucket, to: r.to_bucket, reason: r.reason, batch: r.batch,
});

const ASSIGNMENT_COLUMNS = 'kind, name, bucket, assigned_at';

/** Change-feed rows older than this are pruned; a reader further behind drops its whole cache. */
const CHANGES_RETENTION_MS = 24 * 3600 * 1000;

/** Driver errors that mean "the store cannot serve now" rather than a bug. */
const UNAVAILABLE_CODES = /^SQLITE_(BUSY|LOCKED|FULL|IOERR|READONLY|CANTOPEN|CORRUPT|NOTADB|PROTOCOL|PERM|AUTH)/;

/** SQLITE_BUSY and its extended codes: another connection holds the lock; worth retrying. */
const isBusy = (err: unknown): boolean => {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
};

/** Longest pause between two attempts to take a lock held by another process. */
const BUSY_RETRY_MAX_DELAY_MS = 25;

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
  private readonly busyTimeoutMs: number;
  /** Device and inode of the file at open, to notice it deleted or replaced under us. */
  private readonly fileId: string | null;
  private readonly stmts;
  private readonly assignTx: (kind: string, name: string, buckets: readonly BucketPolicyInput[]) => AssignResult;
  private readonly putTx: (kind: string, name: string, bucket: string, audit: AuditContext, expect: string | null | undefined) => PutResult;
  private readonly deleteTx: (kind: string, name: string, audit: AuditContext, expect: string | undefined) => string | undefined;
  private readonly moveBatchTx: (kind: string, moves: readonly MoveRequest[], audit: AuditContext) => MoveBatchResult;
  private readonly importTx: (rows: readonly ImportRow[], overwrite: boolean, audit: AuditContext) => ImportBatchResult;
  private readonly repairTx: (audit: AuditContext, kind: string | undefined) => CountFix[];
  private readonly auditQueries = new Map<string, Database.Statement<unknown[], AuditRow>>();
  /** Assignment failures, for readiness (ping). */
  private readonly writes = new WriteHealth();
  private closed = false;

  private constructor(db: Database.Database, location: string, now: () => number, busyTimeoutMs: number) {
    this.db = db;
    this.location = location;
    this.now = now;
    this.busyTimeoutMs = busyTimeoutMs;
    this.fileId = location === ':memory:' ? null : fileIdentity(location);
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
      get: db.prepare<[string, string], AssignmentRow>(`SELECT ${ASSIGNMENT_COLUMNS} FROM assignments WHERE kind = ? AND name = ?`),
      move: db.prepare<[string, number, string, string, string]>('UPDATE assignments SET bucket = ?, assigned_at = ? WHERE kind = ? AND name = ? AND bucket = ?'),
      remove: db.prepare<[string, string, string]>('DELETE FROM assignments WHERE kind = ? AND name = ? AND bucket = ?'),
      audit: db.prepare<[number, string, string, string, string | null, string | null, string | null, string | null, string | null]>(
        'INSERT INTO audit (at, actor, action, kind, name, from_bucket, to_bucket, reason, batch) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)'),
      listFirst: db.prepare<[string, number], AssignmentRow>(`SELECT ${ASSIGNMENT_COLUMNS} FROM assignments WHERE kind = ? ORDER BY name LIMIT ?`),
      listAfter: db.prepare<[string, string, number], AssignmentRow>(`SELECT ${ASSIGNMENT_COLUMNS} FROM assignments WHERE kind = ? AND name > ? ORDER BY name LIMIT ?`),
      listBucketFirst: db.prepare<[string, string, number], AssignmentRow>(`SELECT ${ASSIGNMENT_COLUMNS} FROM assignments WHERE kind = ? AND bucket = ? ORDER BY name LIMIT ?`),
      listBucketAfter: db.prepare<[string, string, string, number], AssignmentRow>(`SELECT ${ASSIGNMENT_COLUMNS} FROM assignments WHERE kind = ? AND bucket = ? AND name > ? ORDER BY name LIMIT ?`),
      // Skip-scan over the primary key: one index probe per kind, however many rows.
      firstKind: db.prepare<[], { kind: string }>('SELECT kind FROM assignments ORDER BY kind LIMIT 1'),
      nextKind: db.prepare<[string], { kind: string }>('SELECT kind FROM assignments WHERE kind > ? ORDER BY kind LIMIT 1'),
      allCounts: db.prepare<[], { kind: string; bucket: string; count: number }>('SELECT kind, bucket, count FROM bucket_counts'),
      allRealCounts: db.prepare<[], { kind: string; bucket: string; count: number }>('SELECT kind, bucket, COUNT(*) AS count FROM assignments GROUP BY kind, bucket'),
      setCount: db.prepare<[string, string, number]>('INSERT INTO bucket_counts (kind, bucket, count) VALUES (?, ?, ?) ON CONFLICT (kind, bucket) DO UPDATE SET count = excluded.count'),
      select1: db.prepare('SELECT 1'),
      duplicates: db.prepare<[number], DuplicateObject>('SELECT kind, name, COUNT(*) AS rows FROM assignments GROUP BY kind, name HAVING COUNT(*) > 1 LIMIT ?'),
    };
    this.putTx = db.transaction((kind: string, name: string, bucket: string, audit: AuditContext, expect: string | null | undefined): PutResult => {
      const from = this.stmts.lookup.get(kind, name)?.bucket ?? null;
      if (expect !== undefined && expect !== from) {
        throw new ConflictError(`"${name}" of kind "${kind}" is ${from === null ? 'not assigned' : `on "${from}"`}, not ${expect === null ? 'unassigned' : `on "${expect}"`} as expected: it changed meanwhile; nothing was written`);
      }
      if (from === bucket) return { from, to: bucket, changed: false };
      const now = this.now();
      if (from === null) this.stmts.insert.run(kind, name, bucket, now);
      else this.stmts.move.run(bucket, now, kind, name, from);
      this.writeAudit(now, audit, from === null ? 'assign' : 'move', kind, name, from, bucket);
      return { from, to: bucket, changed: true };
    }).immediate;
    this.deleteTx = db.transaction((kind: string, name: string, audit: AuditContext, expect: string | undefined): string | undefined => {
      const from = this.stmts.lookup.get(kind, name)?.bucket;
      if (expect !== undefined && expect !== from) {
        throw new ConflictError(`"${name}" of kind "${kind}" is ${from === undefined ? 'not assigned' : `on "${from}"`}, not on "${expect}" as expected: it changed meanwhile; nothing was deleted`);
      }
      if (from === undefined) return undefined;
      this.stmts.remove.run(kind, name, from);
      this.writeAudit(this.now(), audit, 'delete', kind, name, from, null);
      return from;
    }).immediate;
    this.moveBatchTx = db.transaction((kind: string, moves: readonly MoveRequest[], audit: AuditContext): MoveBatchResult => {
      const now = this.now();
      const moved: string[] = [];
      const stale: string[] = [];
      for (const m of moves) {
        if (m.from !== m.to && this.stmts.move.run(m.to, now, kind, m.name, m.from).changes === 1) {
          this.writeAudit(now, audit, 'migrate', kind, m.name, m.from, m.to);
          moved.push(m.name);
        } else stale.push(m.name);
      }
      return { moved, stale };
    }).immediate;
    this.importTx = db.transaction((rows: readonly ImportRow[], overwrite: boolean, audit: AuditContext): ImportBatchResult => {
      const now = this.now();
      let inserted = 0;
      let unchanged = 0;
      let overwritten = 0;
      const conflicts: ImportConflict[] = [];
      for (const r of rows) {
        const existing = this.stmts.lookup.get(r.kind, r.name)?.bucket;
        if (existing === undefined) {
          this.stmts.insert.run(r.kind, r.name, r.bucket, r.assignedAt ?? now);
          this.writeAudit(now, audit, 'import', r.kind, r.name, null, r.bucket);
          inserted++;
        } else if (existing === r.bucket) {
          unchanged++;
        } else if (overwrite) {
          this.stmts.move.run(r.bucket, r.assignedAt ?? now, r.kind, r.name, existing);
          this.writeAudit(now, audit, 'import', r.kind, r.name, existing, r.bucket);
          overwritten++;
        } else {
          conflicts.push({ kind: r.kind, name: r.name, existing, wanted: r.bucket });
        }
      }
      return { inserted, unchanged, overwritten, conflicts };
    }).immediate;
    this.repairTx = db.transaction((audit: AuditContext, kind: string | undefined): CountFix[] => {
      const key = (k: string, b: string): string => `${k}\0${b}`;
      const kept = new Map<string, { kind: string; bucket: string; count: number }>();
      for (const r of this.stmts.allCounts.all()) if (kind === undefined || r.kind === kind) kept.set(key(r.kind, r.bucket), r);
      const real = new Map<string, { kind: string; bucket: string; count: number }>();
      for (const r of this.stmts.allRealCounts.all()) if (kind === undefined || r.kind === kind) real.set(key(r.kind, r.bucket), r);
      const fixes: CountFix[] = [];
      const now = this.now();
      for (const k of new Set([...kept.keys(), ...real.keys()])) {
        const row = (real.get(k) ?? kept.get(k))!;
        const was = kept.get(k)?.count ?? 0;
        const is = real.get(k)?.count ?? 0;
        if (was === is) continue;
        this.stmts.setCount.run(row.kind, row.bucket, is);
        this.writeAudit(now, { ...audit, reason: `count of "${row.bucket}" was ${was}, real ${is}${audit.reason ? `: ${audit.reason}` : ''}` }, 'repair', row.kind, null, null, row.bucket);
        fixes.push({ kind: row.kind, bucket: row.bucket, kept: was, real: is });
      }
      return fixes.sort((a, b) => (a.kind === b.kind ? (a.bucket < b.bucket ? -1 : 1) : a.kind < b.kind ? -1 : 1));
    }).immediate;
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
      if (location !== ':memory:') createPrivately(location);
      db = new Database(location, { timeout: opts.busyTimeoutMs });
      db.pragma('journal_mode = WAL');
      // FULL: an assignment the sharder has answered must survive a power cut, not only a crash.
      db.pragma('synchronous = FULL');
      db.pragma(`busy_timeout = ${Math.trunc(opts.busyTimeoutMs)}`);
      migrate(db);
      // From here on a busy database fails at once and run() retries from a timer: SQLite's own
      // busy handler sleeps inside the synchronous call, which would stop the whole event loop
      // (every known user's /auth included) while another process holds the write lock.
      db.pragma('busy_timeout = 0');
    } catch (err) {
      if (err instanceof ShardError && !(err instanceof StoreUnavailableError)) throw err;
      const code = (err as { code?: unknown }).code;
      // Name the file and the likely cause: WAL needs to write the file and create -wal and
      // -shm beside it, so a read-only file or directory fails here, at start.
      const hint = typeof code === 'string' && /^(SQLITE_(READONLY|CANTOPEN|PERM)|EACCES|EPERM|EROFS)/.test(code)
        ? ` (is the file or its directory read-only, or on a read-only file system? The sharder needs to write ${location} and create ${location}-wal and -shm)`
        : '';
      throw new StoreUnavailableError(`cannot open SQLite database ${location}${typeof code === 'string' ? ` (${code})` : ''}: ${(err as Error).message}${hint}`, { cause: err });
    }
    return new SqliteStore(db, location, opts.now ?? Date.now, Math.trunc(opts.busyTimeoutMs));
  }

  /**
   * Runs one synchronous call (a statement or a whole transaction). When the database is
   * locked by another connection, the call is retried after short pauses on a timer, not
   * by blocking, until store.busy_timeout_ms has passed. A retried transaction is safe: a
   * busy BEGIN IMMEDIATE (or COMMIT) leaves nothing written.
   */
  private run<T>(fn: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new StoreUnavailableError('the SQLite store is closed'));
    try {
      return Promise.resolve(fn());
    } catch (err) {
      if (isBusy(err) && this.busyTimeoutMs > 0) return this.retryBusy(fn, Date.now() + this.busyTimeoutMs);
      return Promise.reject(convert(err));
    }
  }

  private async retryBusy<T>(fn: () => T, deadline: number): Promise<T> {
    let delay = 1;
    for (;;) {
      await new Promise((r) => setTimeout(r, Math.max(0, Math.min(delay, deadline - Date.now()))));
      if (this.closed) throw new StoreUnavailableError('the SQLite store is closed');
      try {
        return fn();
      } catch (err) {
        if (!isBusy(err)) throw convert(err);
        if (Date.now() >= deadline) {
          throw new StoreUnavailableError(`SQLite store unavailable: the database ${this.location} stayed locked by another connection for ${this.busyTimeoutMs} ms (store.busy_timeout_ms)`, { cause: err });
        }
        delay = Math.min(delay * 2, BUSY_RETRY_MAX_DELAY_MS);
      }
    }
  }

  lookup(kind: string, name: string): Promise<string | undefined> {
    return this.run(() => this.stmts.lookup.get(kind, name)?.bucket);
  }

  assign(kind: string, name: string, buckets: readonly BucketPolicyInput[]): Promise<AssignResult> {
    return this.writes.follow(this.run(() => {
      // Most misses are objects assigned earlier (another process, or before a restart): a
      // plain indexed read answers them without taking the write lock.
      const existing = this.stmts.lookup.get(kind, name);
      if (existing) return { bucket: existing.bucket, created: false };
      this.checkFile();
      return this.assignTx(kind, name, buckets);
    }), (r) => r.created);
  }

  counts(kind: string): Promise<Map<string, number>> {
    return this.run(() => new Map(this.stmts.counts.all(kind).filter((r) => r.count !== 0).map((r) => [r.bucket, r.count])));
  }

  realCounts(kind: string): Promise<Map<string, number>> {
    return this.run(() => new Map(this.stmts.realCounts.all(kind).map((r) => [r.bucket, r.count])));
  }

  private writeAudit(at: number, a: AuditContext, action: AuditAction, kind: string, name: string | null, from: string | null, to: string | null): void {
    this.stmts.audit.run(at, a.actor, action, kind, name, from, to, a.reason ?? null, a.batch ?? null);
  }

  get(kind: string, name: string): Promise<Assignment | undefined> {
    return this.run(() => {
      const r = this.stmts.get.get(kind, name);
      return r && toAssignment(r);
    });
  }

  put(kind: string, name: string, bucket: string, audit: AuditContext, opts: { expect?: string | null } = {}): Promise<PutResult> {
    return this.run(() => this.putTx(kind, name, bucket, audit, 'expect' in opts ? opts.expect : undefined));
  }

  delete(kind: string, name: string, audit: AuditContext, opts: { expect?: string } = {}): Promise<string | undefined> {
    return this.run(() => this.deleteTx(kind, name, audit, opts.expect));
  }

  list(kind: string, opts: { bucket?: string | undefined; after?: string | undefined; limit: number }): Promise<Assignment[]> {
    return this.run(() => {
      const { bucket, after, limit } = opts;
      const rows = bucket === undefined
        ? after === undefined ? this.stmts.listFirst.all(kind, limit) : this.stmts.listAfter.all(kind, after, limit)
        : after === undefined ? this.stmts.listBucketFirst.all(kind, bucket, limit) : this.stmts.listBucketAfter.all(kind, bucket, after, limit);
      return rows.map(toAssignment);
    });
  }

  moveBatch(kind: string, moves: readonly MoveRequest[], audit: AuditContext): Promise<MoveBatchResult> {
    return this.run(() => this.moveBatchTx(kind, moves, audit));
  }

  /** Paged through list() (store/export.ts): nothing stays open while the caller reads. */
  export(opts: { kind?: string | undefined; pageSize?: number | undefined } = {}): AsyncIterable<Assignment> {
    return exportByPages(this, opts);
  }

  importBatch(rows: readonly ImportRow[], opts: { overwrite: boolean }, audit: AuditContext): Promise<ImportBatchResult> {
    return this.run(() => this.importTx(rows, opts.overwrite, audit));
  }

  audit(q: AuditQuery): Promise<AuditEntry[]> {
    return this.run(() => {
      const where: string[] = [];
      const params: unknown[] = [];
      const filter = (cond: string, value: unknown): void => {
        if (value === undefined) return;
        where.push(cond);
        params.push(value);
      };
      filter('kind = ?', q.kind);
      filter('name = ?', q.name);
      filter('action = ?', q.action);
      filter('batch = ?', q.batch);
      filter('at >= ?', q.since);
      filter('id < ?', q.before);
      const sql = `SELECT * FROM audit${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`;
      let stmt = this.auditQueries.get(sql);
      if (stmt === undefined) {
        stmt = this.db.prepare<unknown[], AuditRow>(sql);
        this.auditQueries.set(sql, stmt);
      }
      return stmt.all(...params, q.limit).map(toAuditEntry);
    });
  }

  repairCounts(audit: AuditContext, kind?: string): Promise<CountFix[]> {
    return this.run(() => this.repairTx(audit, kind));
  }

  kinds(): Promise<string[]> {
    return this.run(() => {
      const out: string[] = [];
      let r = this.stmts.firstKind.get();
      while (r !== undefined) {
        out.push(r.kind);
        r = this.stmts.nextKind.get(r.kind);
      }
      return out;
    });
  }

  duplicates(limit: number): Promise<DuplicateObject[]> {
    return this.run(() => this.stmts.duplicates.all(limit));
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

  /**
   * A database file deleted (or replaced) while open still takes writes, into a file nobody
   * will ever open again: every assignment made from then on would be lost at the next start.
   * Refuse new assignments instead (known users are still answered) and fail readiness.
   */
  private checkFile(): void {
    if (this.fileId === null) return;
    const now = fileIdentity(this.location);
    if (now !== this.fileId) {
      throw new StoreUnavailableError(`the SQLite database ${this.location} was ${now === null ? 'deleted' : 'replaced by another file'} while the sharder had it open: new assignments are refused so that none is lost; restore the file (sharder backup) and restart`);
    }
  }

  /**
   * Readiness: the file is still the one opened, it answers a read, and (store/write-health.ts)
   * no assignment failed since the last write that committed, or a write probe commits now.
   */
  async ping(): Promise<void> {
    await this.run(() => {
      this.checkFile();
      this.stmts.select1.get();
    });
    await this.writes.check(() => this.run(() => this.writeProbe()));
  }

  /**
   * The smallest committed write: page 1 is written again (the header's user_version, which
   * the sharder does not use, is set to the value it has), through the WAL like an assignment,
   * so it fails while the disk is full or read-only. Nothing in the data changes.
   */
  private writeProbe(): void {
    this.checkFile();
    this.db.transaction(() => {
      this.db.pragma(`user_version = ${Math.trunc(Number(this.db.pragma('user_version', { simple: true })))}`);
    }).immediate();
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

/** Mode of a database file the sharder creates: it holds every user name. */
export const DATABASE_FILE_MODE = 0o600;
/** Mode of the folders the sharder creates for it. */
export const DATABASE_DIR_MODE = 0o700;

/**
 * Creates the database's folder (0700) and the empty database file (0600) when they do not
 * exist, whatever the umask: SQLite itself would create the file 0644 (less the umask), and
 * it gives -wal and -shm the mode of the database file, so they end up 0600 too. An existing
 * file keeps its mode (an operator may have chosen 0640 and a group).
 */
export function createPrivately(location: string): void {
  const dir = dirname(location);
  const first = mkdirSync(dir, { recursive: true, mode: DATABASE_DIR_MODE });
  if (first !== undefined) {
    for (let d = dir; ; d = dirname(d)) {
      chmodSync(d, DATABASE_DIR_MODE);
      if (d === first || d === dirname(d)) break;
    }
  }
  let fd: number;
  try {
    fd = openSync(location, 'wx', DATABASE_FILE_MODE);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw err;
  }
  try {
    fchmodSync(fd, DATABASE_FILE_MODE);
  } finally {
    closeSync(fd);
  }
}

function fileIdentity(path: string): string | null {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
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
