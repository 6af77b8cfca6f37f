/**
 * MariaDB/MySQL backend (mysql2): one assignment table shared by any number of sharder
 * instances, as with PostgreSQL, with the same guarantees.
 *
 * First assignments: a plain lookup first (no lock). Names still unknown go into one
 * transaction per kind at a time (READ COMMITTED): it locks the kind's row in `kinds`
 * (SELECT … FOR UPDATE), re-reads the names (a racing instance may have committed them),
 * reads the kind's few bucket_counts rows, chooses with the pure policy and inserts; triggers
 * update the counts and the change feed in the same transaction. So first assignments of a
 * kind are serialised across all instances, each one is emptiest when it commits, and the
 * work per assignment is a few index probes whatever the table's size. Concurrent misses in
 * one process share a transaction (group commit, batcher.ts).
 *
 * Other instances' changes are read from the `changes` table, polled by id every
 * store.poll_ms (MariaDB has no LISTEN/NOTIFY): a change is seen within one poll interval
 * plus one query.
 */
import mysql from 'mysql2/promise';
import type { BucketPolicyInput } from '../../core/policy.js';
import { ShardError, StoreUnavailableError } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import type { BatchResult } from '../batcher.js';
import { GroupCommit, type AssignInput } from '../group-commit.js';
import { exportByPages } from '../export.js';
import {
  listPage,
  pendingMigrations,
  planAssignments,
  toAssignment,
  toAuditEntry,
  type AssignmentRow,
  type AuditRow,
} from '../rules.js';
import { exposeForTests } from '../test-hook.js';
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
import { deleteTx, importTx, lockKinds, moveBatchTx, putTx, repairTx, type Exec } from './admin.js';
import { convertMariadbError, isConnectionLost, isDuplicateKey, type MariadbConnection } from './connect.js';
import { COLLATION, MARIADB_MIGRATIONS, SQL, auditQuery, collationFor } from './schema.js';

/** Attempts of an assignment transaction that hit a duplicate key (a writer that took no kind lock). */
const DUPLICATE_RETRIES = 3;
/** Attempts of a read or an assignment whose connection was lost (both are safe to repeat). */
const LOST_CONNECTION_ATTEMPTS = 3;
/** Change-feed rows older than this are pruned; a reader further behind drops its whole cache. */
const CHANGES_RETENTION_MS = 24 * 3600 * 1000;
/** Rows per read of the change feed. */
const FEED_PAGE = 10_000;
/** How long instances starting together wait for one another's migration, in seconds. */
const MIGRATION_LOCK_WAIT_S = 120;

/** What testHandle() (store/test-hook.ts) gives for a MariaDB store. */
export interface MariadbTestHandle {
  readonly pool: mysql.Pool;
}

export interface MariadbOpenOptions {
  log?: Logger;
}

const retryable = (err: unknown, attempt: number): boolean =>
  (attempt < LOST_CONNECTION_ATTEMPTS && isConnectionLost(err)) || (attempt < DUPLICATE_RETRIES && isDuplicateKey(err));

export class MariadbStore implements Store {
  readonly backend = 'mariadb';
  readonly location: string;
  private readonly group: GroupCommit;
  /** Kinds known to have their lock row. */
  private readonly kindRows = new Set<string>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  /**
   * @param feedStart where the change feed ended when the store opened: a watcher started
   * later reports every change since then (a few repeats are harmless; a gap would not be).
   */
  private constructor(
    private readonly conn: MariadbConnection,
    private readonly pool: mysql.Pool,
    private readonly log: Logger,
    private readonly feedStart: number,
  ) {
    this.location = conn.location;
    this.group = new GroupCommit({
      lookupMany: async (kind, names) =>
        new Map(
          (await this.query<{ name: string; bucket: string }>(SQL.lookupMany, [kind, names])).map((r) => [
            r.name,
            r.bucket,
          ]),
        ),
      assignMany: (kind, items) => this.transaction([kind], (q) => assignLocked(q, kind, items)),
      lookupConcurrency: Math.max(1, Math.floor((conn.pool.connectionLimit ?? 10) / 2)),
      retryable,
    });
    exposeForTests(this, { pool } satisfies MariadbTestHandle);
  }

  /** Connects, applies pending migrations under GET_LOCK. Throws StoreUnavailableError. */
  static async open(conn: MariadbConnection, opts: MariadbOpenOptions = {}): Promise<MariadbStore> {
    const log = opts.log ?? silentLogger();
    let c: mysql.Connection | undefined;
    let feedStart: number;
    try {
      // Migrations get a connection of their own, with multiple statements and no time limit.
      c = await mysql.createConnection({
        ...conn.pool,
        multipleStatements: true,
        password: (conn.pool as { password?: string }).password,
      });
      c.on('error', () => undefined);
      await migrate(c, log);
      const [[last]] = await c.query<mysql.RowDataPacket[]>(SQL.lastChange);
      feedStart = Number(last?.id ?? 0);
    } catch (err) {
      throw convertOpenError(err, conn.location);
    } finally {
      await c?.end().catch(() => undefined);
    }
    const pool = mysql.createPool({ ...conn.pool, password: (conn.pool as { password?: string }).password });
    pool.on('connection', (promised) => {
      // mysql2 hands this event the callback-style connection, whatever its typings say; the
      // commands queue on it ahead of any query of ours.
      const pc = promised as unknown as {
        query(sql: string, cb: (err: Error | null) => void): void;
        on(ev: 'error', fn: (err: Error) => void): void;
      };
      const failed = (err: Error | null): void => {
        if (err)
          log.warn({ event: 'mariadb_session_setup_failed', err: err.message }, 'setting up a MariaDB session failed');
      };
      // READ COMMITTED: a read after taking a lock sees what committed before it (docs/store).
      pc.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED', failed);
      pc.query(
        `SET SESSION innodb_lock_wait_timeout = ${Math.max(1, Math.ceil(conn.statementTimeoutMs / 1000))}`,
        failed,
      );
      pc.on('error', (err) =>
        log.warn(
          { event: 'mariadb_connection_error', err: err.message },
          'MariaDB connection failed; it was discarded',
        ),
      );
    });
    return new MariadbStore(conn, pool, log, feedStart);
  }

  private async query<R>(
    sql: string,
    values: unknown[] = [],
    on: mysql.Pool | mysql.PoolConnection = this.pool,
  ): Promise<R[] & { affectedRows?: number }> {
    if (this.closed) throw new StoreUnavailableError('the MariaDB store is closed');
    try {
      const [rows] = await on.query({ sql, values, timeout: this.conn.queryTimeoutMs });
      return rows as unknown as R[] & { affectedRows?: number };
    } catch (err) {
      throw convertMariadbError(err);
    }
  }

  /** Creates the lock rows of kinds not seen yet (autocommit, outside the transaction that locks them). */
  private async ensureKinds(kinds: Iterable<string>): Promise<void> {
    const missing = [...new Set(kinds)].filter((k) => !this.kindRows.has(k));
    if (missing.length === 0) return;
    await this.query(SQL.addKinds, [missing.map((k) => [k])]);
    for (const k of missing) this.kindRows.add(k);
  }

  /** Runs `fn` in a transaction on one pooled connection; a failed connection is destroyed. */
  private async transaction<T>(kinds: Iterable<string>, fn: (q: Exec) => Promise<T>): Promise<T> {
    await this.ensureKinds(kinds);
    let c: mysql.PoolConnection;
    try {
      if (this.closed) throw new StoreUnavailableError('the MariaDB store is closed');
      c = await this.pool.getConnection();
    } catch (err) {
      throw convertMariadbError(err);
    }
    const q: Exec = (sql, values) => this.query(sql, values ?? [], c);
    let broken = false;
    try {
      await q('BEGIN');
      const result = await fn(q);
      await q('COMMIT');
      return result;
    } catch (err) {
      try {
        await c.query('ROLLBACK');
      } catch {
        broken = true;
      }
      throw convertMariadbError(err);
    } finally {
      if (broken) c.destroy();
      else c.release();
    }
  }

  lookup(kind: string, name: string): Promise<string | undefined> {
    return this.closed
      ? Promise.reject(new StoreUnavailableError('the MariaDB store is closed'))
      : this.group.lookup(kind, name);
  }

  assign(kind: string, name: string, buckets: readonly BucketPolicyInput[]): Promise<AssignResult> {
    return this.group.assign(kind, name, buckets);
  }

  async counts(kind: string): Promise<Map<string, number>> {
    return new Map(
      (await this.query<{ bucket: string; count: number }>(SQL.counts, [kind])).map((r) => [r.bucket, Number(r.count)]),
    );
  }

  async realCounts(kind: string): Promise<Map<string, number>> {
    return new Map(
      (await this.query<{ bucket: string; count: number }>(SQL.realCounts, [kind])).map((r) => [
        r.bucket,
        Number(r.count),
      ]),
    );
  }

  async get(kind: string, name: string): Promise<Assignment | undefined> {
    const rows = await this.query<AssignmentRow>(SQL.get, [kind, name]);
    return rows[0] && toAssignment(rows[0]);
  }

  put(
    kind: string,
    name: string,
    bucket: string,
    audit: AuditContext,
    opts: { expect?: string | null } = {},
  ): Promise<PutResult> {
    const expect = 'expect' in opts ? opts.expect : undefined;
    return this.transaction([kind], (q) => putTx(q, kind, name, bucket, audit, expect));
  }

  delete(kind: string, name: string, audit: AuditContext, opts: { expect?: string } = {}): Promise<string | undefined> {
    return this.transaction([kind], (q) => deleteTx(q, kind, name, audit, opts.expect));
  }

  async list(
    kind: string,
    opts: { bucket?: string | undefined; after?: string | undefined; limit: number },
  ): Promise<Assignment[]> {
    const { statement, params } = listPage(SQL, kind, opts);
    return (await this.query<AssignmentRow>(statement, params)).map(toAssignment);
  }

  moveBatch(kind: string, moves: readonly MoveRequest[], audit: AuditContext): Promise<MoveBatchResult> {
    if (moves.length === 0) return Promise.resolve({ moved: [], stale: [] });
    return this.transaction([kind], (q) => moveBatchTx(q, kind, moves, audit));
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
    if (rows.length === 0) return Promise.resolve({ inserted: 0, unchanged: 0, overwritten: 0, conflicts: [] });
    return this.transaction(
      rows.map((r) => r.kind),
      (q) => importTx(q, rows, opts.overwrite, audit),
    );
  }

  async audit(q: AuditQuery): Promise<AuditEntry[]> {
    const { text, values } = auditQuery(q);
    return (await this.query<AuditRow>(text, values)).map(toAuditEntry);
  }

  async repairCounts(audit: AuditContext, kind?: string): Promise<CountFix[]> {
    const kinds =
      kind === undefined
        ? [
            ...new Set([
              ...(await this.kinds()),
              ...(await this.query<{ kind: string }>(SQL.countedKinds)).map((r) => r.kind),
            ]),
          ]
        : [kind];
    return this.transaction(kinds, (q) => repairTx(q, audit, kind, kinds));
  }

  async kinds(): Promise<string[]> {
    const out: string[] = [];
    let r = (await this.query<{ kind: string }>(SQL.firstKind))[0];
    while (r !== undefined) {
      out.push(r.kind);
      r = (await this.query<{ kind: string }>(SQL.nextKind, [r.kind]))[0];
    }
    return out;
  }

  async duplicates(limit: number): Promise<DuplicateObject[]> {
    return (await this.query<{ kind: string; name: string; rows: number }>(SQL.duplicates, [limit])).map((r) => ({
      kind: r.kind,
      name: r.name,
      rows: Number(r.rows),
    }));
  }

  /**
   * Polls the change feed every pollMs, from where it ended when the store opened: the rows
   * past the last id seen, in id order (ids are
   * handed out in commit order: schema.ts, lock 2). When the row at the cursor has been pruned
   * meanwhile, the reader fell behind: it reports "anything may have changed".
   */
  watch(listener: ChangeListener, pollMs: number): () => void {
    let cursor = this.feedStart;
    let lastPrune = 0;
    let busy = false;
    const poll = async (): Promise<void> => {
      if (this.closed || busy) return;
      busy = true;
      try {
        for (;;) {
          const rows: { id: number; kind: string; name: string; bucket: string | null }[] = await this.query<{
            id: number;
            kind: string;
            name: string;
            bucket: string | null;
          }>(SQL.changesSince, [cursor, FEED_PAGE]);
          if (rows.length === 0) break;
          if (
            cursor > 0 &&
            Number(rows[0]!.id) !== cursor + 1 &&
            Number((await this.query<{ here: number }>(SQL.changeExists, [cursor]))[0]!.here) === 0
          )
            listener(null, null);
          for (const r of rows) {
            if (r.bucket === null) listener(r.kind, r.name);
            else listener(r.kind, r.name, r.bucket);
          }
          cursor = Number(rows.at(-1)!.id);
          if (rows.length < FEED_PAGE) break;
        }
        if (Date.now() - lastPrune > 3600_000) {
          lastPrune = Date.now();
          await this.query(SQL.pruneChanges, [Date.now() - CHANGES_RETENTION_MS]);
        }
      } catch (err) {
        // Retried at the next tick; ping() reports an unavailable store.
        this.log.debug?.(
          { event: 'mariadb_feed_error', err: (err as Error).message },
          'reading the MariaDB change feed failed',
        );
      } finally {
        busy = false;
      }
    };
    const timer = setInterval(() => void poll(), pollMs);
    timer.unref();
    this.timers.add(timer);
    void poll();
    return () => {
      clearInterval(timer);
      this.timers.delete(timer);
    };
  }

  /**
   * Readiness: a read answers and (store/write-health.ts) no assignment failed since the last
   * write that committed, or the server is not read-only now.
   */
  async ping(): Promise<void> {
    await this.query('SELECT 1');
    await this.group.writes.check(async () => {
      if (Number((await this.query<{ ro: number }>(SQL.readOnly))[0]?.ro) === 1) {
        throw new StoreUnavailableError(
          'MariaDB store unavailable: the server is read-only (read_only is on: a replica?), so new ' +
            'assignments cannot be written',
        );
      }
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.timers.clear();
    await this.pool.end().catch(() => undefined);
  }
}

/** The body of an assignment transaction; the caller has opened it. */
async function assignLocked(q: Exec, kind: string, items: AssignInput[]): Promise<BatchResult<AssignResult>[]> {
  const now = await lockKinds(q, [kind]);
  const names = [...new Set(items.map((i) => i.name))];
  const existing = new Map(
    (await q<{ name: string; bucket: string }>(SQL.lookupMany, [kind, names])).map((r) => [r.name, r.bucket]),
  );
  const counts = new Map(
    (await q<{ bucket: string; count: number }>(SQL.countsOf, [kind])).map((r) => [r.bucket, Number(r.count)]),
  );
  const plan = planAssignments(kind, items, existing, counts);
  if (plan.inserts.length > 0) await q(SQL.insertMany, [plan.inserts.map((i) => [kind, i.name, i.bucket, now])]);
  return plan.results;
}

/** Applies pending migrations, one at a time, under GET_LOCK (instances starting together migrate once). */
async function migrate(c: mysql.Connection, log: Logger): Promise<void> {
  const [[lock]] = await c.query<mysql.RowDataPacket[]>(SQL.lockMigrations, [MIGRATION_LOCK_WAIT_S]);
  if (Number(lock?.got) !== 1)
    throw new StoreUnavailableError(
      `another sharder held the MariaDB migration lock for ${MIGRATION_LOCK_WAIT_S} s: is one stuck migrating?`,
    );
  try {
    await c.query(SQL.migrationsTable);
    const [[row]] = await c.query<mysql.RowDataPacket[]>(SQL.schemaVersion);
    const [[v]] = await c.query<mysql.RowDataPacket[]>(SQL.version);
    const collation = collationFor(String(v?.version));
    for (const m of pendingMigrations(MARIADB_MIGRATIONS, Number(row?.version ?? 0))) {
      // DDL commits implicitly: a migration is recorded after its last statement succeeded.
      await c.query(m.sql.replaceAll(COLLATION, collation));
      await c.query(SQL.recordMigration, [m.version, m.name]);
      log.info({ event: 'migrated', version: m.version, name: m.name }, `schema migrated to version ${m.version}`);
    }
  } finally {
    await c.query(SQL.unlockMigrations).catch(() => undefined);
  }
}

/** At open, any database error (a missing privilege too) means "cannot start". */
function convertOpenError(err: unknown, location: string): unknown {
  if (err instanceof ShardError && !(err instanceof StoreUnavailableError)) return err;
  const c = convertMariadbError(err);
  const detail =
    c instanceof StoreUnavailableError
      ? c.message
      : err instanceof Error
        ? `${err.message}${(err as { code?: string }).code ? ` (${(err as { code?: string }).code})` : ''}`
        : undefined;
  if (detail === undefined) return c;
  return new StoreUnavailableError(`cannot open MariaDB database ${location}: ${detail}`, { cause: err });
}
