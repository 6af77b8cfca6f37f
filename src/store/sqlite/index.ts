/**
 * SQLite backend (better-sqlite3), the embedded default. WAL lets the server and CLI processes
 * share the file; `BEGIN IMMEDIATE` takes the write lock before reading the counts, so first
 * assignments are serialised across processes and each one is emptiest when it commits.
 * Counts are maintained by triggers in the same transaction as the row they count, so no code
 * path (assign, move, delete, import, even a hand-written UPDATE) can make them drift.
 */
import { resolve } from 'node:path';
import Database from 'better-sqlite3';
import { chooseBucket, type BucketPolicyInput } from '../../core/policy.js';
import { NoBucketError, ShardError, StoreUnavailableError } from '../../errors.js';
import type {
  AssignResult,
  Assignment,
  AuditContext,
  AuditEntry,
  AuditQuery,
  ChangeListener,
  CountFix,
  DuplicateObject,
  ImportBatchResult,
  ImportRow,
  MoveBatchResult,
  MoveRequest,
  PutResult,
  Store,
} from '../types.js';
import { exportByPages } from '../export.js';
import { auditQuery, listPage, toAssignment, toAuditEntry, type AuditDialect, type AuditRow } from '../rules.js';
import { exposeForTests } from '../test-hook.js';
import { WriteHealth } from '../write-health.js';
import * as admin from './admin.js';
import { createPrivately, fileIdentity } from './files.js';
import { migrate, prepareStatements, type Statements } from './schema.js';

/** What testHandle() (store/test-hook.ts) gives for a SQLite store: the database connection. */
export type SqliteTestHandle = Database.Database;

const AUDIT: AuditDialect = { param: () => '?', since: (p) => `at >= ${p}`, select: 'SELECT * FROM audit' };

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
  private readonly stmts: Statements;
  private readonly assignTx: (kind: string, name: string, buckets: readonly BucketPolicyInput[]) => AssignResult;
  private readonly putTx: (
    kind: string,
    name: string,
    bucket: string,
    audit: AuditContext,
    expect: string | null | undefined,
  ) => PutResult;
  private readonly deleteTx: (
    kind: string,
    name: string,
    audit: AuditContext,
    expect: string | undefined,
  ) => string | undefined;
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
    exposeForTests(this, db satisfies SqliteTestHandle);
    this.stmts = prepareStatements(db);
    const x: admin.AdminContext = { stmts: this.stmts, now: this.now };
    this.putTx = db.transaction(
      (kind: string, name: string, bucket: string, audit: AuditContext, expect: string | null | undefined) =>
        admin.putTx(x, kind, name, bucket, audit, expect),
    ).immediate;
    this.deleteTx = db.transaction((kind: string, name: string, audit: AuditContext, expect: string | undefined) =>
      admin.deleteTx(x, kind, name, audit, expect),
    ).immediate;
    this.moveBatchTx = db.transaction((kind: string, moves: readonly MoveRequest[], audit: AuditContext) =>
      admin.moveBatchTx(x, kind, moves, audit),
    ).immediate;
    this.importTx = db.transaction((rows: readonly ImportRow[], overwrite: boolean, audit: AuditContext) =>
      admin.importTx(x, rows, overwrite, audit),
    ).immediate;
    this.repairTx = db.transaction((audit: AuditContext, kind: string | undefined) =>
      admin.repairTx(x, audit, kind),
    ).immediate;
    this.assignTx = db.transaction(
      (kind: string, name: string, buckets: readonly BucketPolicyInput[]): AssignResult => {
        const existing = this.stmts.lookup.get(kind, name);
        if (existing) return { bucket: existing.bucket, created: false };
        const counts = new Map<string, number>();
        for (const row of this.stmts.counts.all(kind)) counts.set(row.bucket, row.count);
        const bucket = chooseBucket(buckets, counts);
        if (bucket === undefined) throw new NoBucketError(kind);
        this.stmts.insert.run(kind, name, bucket, this.now());
        return { bucket, created: true };
      },
    ).immediate;
  }

  /** Opens (creating the file and its folder if needed) and migrates the database. */
  /** The absolute path of the database file a configured path names (or :memory:). */
  static location(path: string): string {
    return path === ':memory:' ? ':memory:' : resolve(path);
  }

  static open(opts: SqliteOptions): SqliteStore {
    const location = SqliteStore.location(opts.path);
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
      const hint =
        typeof code === 'string' && /^(SQLITE_(READONLY|CANTOPEN|PERM)|EACCES|EPERM|EROFS)/.test(code)
          ? ' (is the file or its directory read-only, or on a read-only file system? The sharder needs to write ' +
            `${location} and create ${location}-wal and -shm)`
          : '';
      throw new StoreUnavailableError(
        `cannot open SQLite database ${location}${typeof code === 'string' ? ` (${code})` : ''}: ` +
          `${(err as Error).message}${hint}`,
        { cause: err },
      );
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
          throw new StoreUnavailableError(
            `SQLite store unavailable: the database ${this.location} stayed locked by another connection for ` +
              `${this.busyTimeoutMs} ms (store.busy_timeout_ms)`,
            { cause: err },
          );
        }
        delay = Math.min(delay * 2, BUSY_RETRY_MAX_DELAY_MS);
      }
    }
  }

  lookup(kind: string, name: string): Promise<string | undefined> {
    return this.run(() => this.stmts.lookup.get(kind, name)?.bucket);
  }

  assign(kind: string, name: string, buckets: readonly BucketPolicyInput[]): Promise<AssignResult> {
    return this.writes.follow(
      this.run(() => {
        // Most misses are objects assigned earlier (another process, or before a restart): a
        // plain indexed read answers them without taking the write lock.
        const existing = this.stmts.lookup.get(kind, name);
        if (existing) return { bucket: existing.bucket, created: false };
        this.checkFile();
        return this.assignTx(kind, name, buckets);
      }),
      (r) => r.created,
    );
  }

  counts(kind: string): Promise<Map<string, number>> {
    return this.run(
      () =>
        new Map(
          this.stmts.counts
            .all(kind)
            .filter((r) => r.count !== 0)
            .map((r) => [r.bucket, r.count]),
        ),
    );
  }

  realCounts(kind: string): Promise<Map<string, number>> {
    return this.run(() => new Map(this.stmts.realCounts.all(kind).map((r) => [r.bucket, r.count])));
  }

  get(kind: string, name: string): Promise<Assignment | undefined> {
    return this.run(() => {
      const r = this.stmts.get.get(kind, name);
      return r && toAssignment(r);
    });
  }

  put(
    kind: string,
    name: string,
    bucket: string,
    audit: AuditContext,
    opts: { expect?: string | null } = {},
  ): Promise<PutResult> {
    return this.run(() => this.putTx(kind, name, bucket, audit, 'expect' in opts ? opts.expect : undefined));
  }

  delete(kind: string, name: string, audit: AuditContext, opts: { expect?: string } = {}): Promise<string | undefined> {
    return this.run(() => this.deleteTx(kind, name, audit, opts.expect));
  }

  list(
    kind: string,
    opts: { bucket?: string | undefined; after?: string | undefined; limit: number },
  ): Promise<Assignment[]> {
    return this.run(() => {
      const { statement, params } = listPage(this.stmts, kind, opts);
      return statement.all(...params).map(toAssignment);
    });
  }

  moveBatch(kind: string, moves: readonly MoveRequest[], audit: AuditContext): Promise<MoveBatchResult> {
    return this.run(() => this.moveBatchTx(kind, moves, audit));
  }

  /** Paged through list() (store/export.ts): nothing stays open while the caller reads. */
  export(opts: { kind?: string | undefined; pageSize?: number | undefined } = {}): AsyncIterable<Assignment> {
    return exportByPages(this, opts);
  }

  importBatch(
    rows: readonly ImportRow[],
    opts: { overwrite: boolean },
    audit: AuditContext,
  ): Promise<ImportBatchResult> {
    return this.run(() => this.importTx(rows, opts.overwrite, audit));
  }

  audit(q: AuditQuery): Promise<AuditEntry[]> {
    return this.run(() => {
      const { text, values } = auditQuery(q, AUDIT);
      let stmt = this.auditQueries.get(text);
      if (stmt === undefined) {
        stmt = this.db.prepare<unknown[], AuditRow>(text);
        this.auditQueries.set(text, stmt);
      }
      return stmt.all(...values).map(toAuditEntry);
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
      throw new StoreUnavailableError(
        `the SQLite database ${this.location} was ${now === null ? 'deleted' : 'replaced by another file'} ` +
          'while the sharder had it open: new assignments are refused so that none is lost; restore the file ' +
          '(sharder backup) and restart',
      );
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
    this.db
      .transaction(() => {
        this.db.pragma(`user_version = ${Math.trunc(Number(this.db.pragma('user_version', { simple: true })))}`);
      })
      .immediate();
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.db.close();
    }
    return Promise.resolve();
  }
}
