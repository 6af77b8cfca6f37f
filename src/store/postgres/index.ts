/**
 * PostgreSQL backend (pg + pg-pool): one assignment table shared by any number of sharder
 * instances on any number of hosts.
 *
 * First assignments: a plain lookup first (no lock; most misses are objects another instance
 * or an earlier run assigned). Names still unknown go into one transaction per kind at a time:
 * it takes the kind's transaction-level advisory lock, re-reads the names (a racing instance
 * may have committed them), reads the kind's few bucket_counts rows, chooses with the pure
 * policy and inserts; triggers update the counts in the same transaction. So first
 * assignments of a kind are serialised across all instances, each one is emptiest when it
 * commits, and the work per assignment is a few index probes whatever the table's size.
 * Concurrent misses in one process share a transaction (group commit, see batcher.ts).
 *
 * The admin primitives (explicit assignment, moves, deletes, imports, count repairs) are
 * transactions in admin.ts that take the same kind locks first; reads (get, list,
 * export, audit, kinds) are single queries.
 */
import pg from 'pg';
import type { BucketPolicyInput } from '../../core/policy.js';
import { ShardError, StoreUnavailableError } from '../../errors.js';
import { silentLogger, type Logger } from '../../log.js';
import type { BatchResult } from '../batcher.js';
import { GroupCommit, type AssignInput } from '../group-commit.js';
import { convertPgError, isUniqueViolation, withSettings, type PostgresConnection } from './connect.js';
import { POSTGRES_MIGRATIONS, SQL, auditQuery } from './schema.js';
import { PostgresChangeWatcher } from './watch.js';
import { PostgresHosts } from './hosts.js';
import { deleteTx, importTx, moveBatchTx, putTx, repairTx } from './admin.js';
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

/** A write refused by a read-only session: the host is a standby now. */
const READ_ONLY_SQLSTATE = '25006';

/** Attempts of an assignment transaction that hit a unique violation (a racing writer that
 * took no kind lock): each retry re-reads the names and so returns the winner's bucket. */
const UNIQUE_RETRIES = 3;
/**
 * Attempts of a lookup or an assignment whose connection was lost (the backend terminated or
 * restarted, a reset): pooled connections die together, so the next attempt may draw another
 * dead one before the pool has noticed. Both are safe to repeat: a lookup only reads, and an
 * assignment transaction reads the existing rows first, so a repeat after a lost COMMIT
 * answers the committed bucket.
 */
const LOST_CONNECTION_ATTEMPTS = 4;

/** True when the error says the connection died, rather than that the statement failed. */
export function isConnectionLost(err: unknown): boolean {
  const e = (err instanceof ShardError && err.cause !== undefined ? err.cause : err) as {
    code?: unknown;
    message?: unknown;
  } | null;
  if (e === null || typeof e !== 'object') return false;
  if (e instanceof pg.DatabaseError) return typeof e.code === 'string' && /^(57P0[123]|08)/.test(e.code);
  const code = typeof e.code === 'string' ? e.code : '';
  return (
    /^(ECONNRESET|EPIPE|ECONNREFUSED)$/.test(code) ||
    (typeof e.message === 'string' && /Connection terminated/i.test(e.message))
  );
}

const retryable = (err: unknown, attempt: number): boolean =>
  (attempt < LOST_CONNECTION_ATTEMPTS && isConnectionLost(err)) || (attempt < UNIQUE_RETRIES && isUniqueViolation(err));

/** What testHandle() (store/test-hook.ts) gives for a PostgreSQL store. */
export interface PostgresTestHandle {
  readonly pool: pg.Pool;
  /** The change watchers running now. */
  readonly watchers: ReadonlySet<PostgresChangeWatcher>;
}

export interface PostgresOpenOptions {
  log?: Logger;
}

export class PostgresStore implements Store {
  readonly backend = 'postgres';
  readonly location: string;
  private readonly pool: pg.Pool;
  private readonly log: Logger;
  private readonly watchers = new Set<PostgresChangeWatcher>();
  private readonly group: GroupCommit;
  private closed = false;

  private constructor(
    private readonly conn: PostgresConnection,
    pool: pg.Pool,
    log: Logger,
    private readonly hosts: PostgresHosts,
    /** Which database this is, for a local snapshot (store/snapshot.ts): never the password. */
    readonly identity: DatabaseIdentity,
  ) {
    this.location = conn.location;
    this.pool = pool;
    this.log = log;
    this.group = new GroupCommit({
      lookupMany: async (kind, names) =>
        new Map(
          (await this.query<{ name: string; bucket: string }>(SQL.lookupMany, [kind, names])).rows.map((r) => [
            r.name,
            r.bucket,
          ]),
        ),
      assignMany: (kind, items) => this.transaction((c) => assignLocked(c, kind, items)),
      // Leave connections for assignment transactions and the change feed.
      lookupConcurrency: Math.max(1, Math.floor((conn.pool.max ?? 10) / 2)),
      retryable,
    });
    exposeForTests(this, { pool, watchers: this.watchers } satisfies PostgresTestHandle);
  }

  /** Connects, checks the server, applies pending migrations. Throws StoreUnavailableError. */
  static async open(conn: PostgresConnection, opts: PostgresOpenOptions = {}): Promise<PostgresStore> {
    const log = opts.log ?? silentLogger();
    const hosts = new PostgresHosts(conn.hosts, conn.targetSessionAttrs, conn.client, log);
    // Migrations get a connection of their own with no statement timeout: waiting for another
    // instance's migration, or running a long one, must not fail the start.
    let client: pg.Client | undefined;
    let identity: DatabaseIdentity;
    try {
      await hosts.find();
      client = new hosts.Client(
        withSettings(conn.client, { statement_timeout: 0, query_timeout: 0, idle_in_transaction_session_timeout: 0 }),
      );
      client.on('error', () => undefined);
      await client.connect();
      await checkServer(client);
      await migrate(client, log);
      identity = await databaseIdentity(client);
    } catch (err) {
      throw convertOpenError(err, conn.location);
    } finally {
      await client?.end().catch(() => undefined);
    }
    const pool = new pg.Pool(withSettings(conn.pool, { Client: hosts.Client } as pg.ClientConfig));
    // An idle pooled connection can fail (server restart, network): pg-pool has already
    // dropped it; without this handler the 'error' event would crash the process.
    pool.on('error', (err) =>
      log.warn(
        { event: 'postgres_idle_connection_error', err: err.message },
        'idle PostgreSQL connection failed; it was discarded',
      ),
    );
    return new PostgresStore(conn, pool, log, hosts, identity);
  }

  private check(): void {
    if (this.closed) throw new StoreUnavailableError('the PostgreSQL store is closed');
  }

  private async query<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    this.check();
    try {
      return await this.pool.query<R>(text, values);
    } catch (err) {
      throw convertPgError(err);
    }
  }

  /**
   * Runs `fn` in a transaction on one pooled connection; COMMIT on success, ROLLBACK on error.
   * A connection that failed is destroyed, not returned to the pool. Errors are converted.
   */
  private async transaction<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    this.check();
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw convertPgError(err);
    }
    let broken: Error | undefined;
    // A checked-out client has no 'error' listener of pg-pool's: a connection killed between
    // two statements (server shutdown) would otherwise be an unhandled 'error' event and end
    // the process. Note it; the next statement fails and the client is destroyed on release.
    const onError = (err: Error): void => {
      broken = err;
    };
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const result = await fn(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      if (err instanceof pg.DatabaseError || err instanceof ShardError) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackErr) {
          broken = rollbackErr as Error;
        }
      } else {
        // The connection failed or timed out: destroying it rolls the transaction back.
        broken = err as Error;
      }
      if (err instanceof pg.DatabaseError && err.code === READ_ONLY_SQLSTATE) {
        // The host was demoted (a switchover): this connection is no use for writes any more.
        broken = err;
        this.hosts.failed((client as { hostIndex?: number }).hostIndex);
      }
      throw convertPgError(err);
    } finally {
      client.removeListener('error', onError);
      client.release(broken);
    }
  }

  lookup(kind: string, name: string): Promise<string | undefined> {
    return this.closed
      ? Promise.reject(new StoreUnavailableError('the PostgreSQL store is closed'))
      : this.group.lookup(kind, name);
  }

  assign(kind: string, name: string, buckets: readonly BucketPolicyInput[]): Promise<AssignResult> {
    return this.group.assign(kind, name, buckets);
  }

  async counts(kind: string): Promise<Map<string, number>> {
    const { rows } = await this.query<{ bucket: string; count: string }>(SQL.counts, [kind]);
    return new Map(rows.map((r) => [r.bucket, Number(r.count)]));
  }

  async realCounts(kind: string): Promise<Map<string, number>> {
    const { rows } = await this.query<{ bucket: string; count: string }>(SQL.realCounts, [kind]);
    return new Map(rows.map((r) => [r.bucket, Number(r.count)]));
  }

  async get(kind: string, name: string): Promise<Assignment | undefined> {
    const { rows } = await this.query<AssignmentRow>(SQL.get, [kind, name]);
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
    return this.transaction((c) => putTx(c, kind, name, bucket, audit, expect));
  }

  delete(kind: string, name: string, audit: AuditContext, opts: { expect?: string } = {}): Promise<string | undefined> {
    return this.transaction((c) => deleteTx(c, kind, name, audit, opts.expect));
  }

  async list(
    kind: string,
    opts: { bucket?: string | undefined; after?: string | undefined; limit: number },
  ): Promise<Assignment[]> {
    const { statement, params } = listPage(SQL, kind, opts);
    return (await this.query<AssignmentRow>(statement, params)).rows.map(toAssignment);
  }

  moveBatch(kind: string, moves: readonly MoveRequest[], audit: AuditContext): Promise<MoveBatchResult> {
    if (moves.length === 0) return Promise.resolve({ moved: [], stale: [] });
    return this.transaction((c) => moveBatchTx(c, kind, moves, audit));
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
    return this.transaction((c) => importTx(c, rows, opts.overwrite, audit));
  }

  async audit(q: AuditQuery): Promise<AuditEntry[]> {
    const { text, values } = auditQuery(q);
    const { rows } = await this.query<AuditRow>(text, values);
    return rows.map(toAuditEntry);
  }

  async repairCounts(audit: AuditContext, kind?: string): Promise<CountFix[]> {
    // Every kind's lock must be taken before its counts are read; the kinds are found first.
    const kinds =
      kind === undefined
        ? [
            ...new Set([
              ...(await this.kinds()),
              ...(await this.query<{ kind: string }>(SQL.countedKinds, [])).rows.map((r) => r.kind),
            ]),
          ]
        : [kind];
    return this.transaction((c) => repairTx(c, audit, kind, kinds));
  }

  async kinds(): Promise<string[]> {
    const { rows } = await this.query<{ kind: string }>(SQL.kinds, []);
    return rows.map((r) => r.kind);
  }

  async duplicates(limit: number): Promise<DuplicateObject[]> {
    const { rows } = await this.query<{ kind: string; name: string; rows: string }>(SQL.duplicates, [limit]);
    return rows.map((r) => ({ kind: r.kind, name: r.name, rows: Number(r.rows) }));
  }

  watch(listener: ChangeListener, pollMs: number): () => void {
    const w = new PostgresChangeWatcher({
      pool: this.pool,
      newClient: () => new this.hosts.Client(this.conn.client),
      listener,
      pollMs,
      log: this.log,
    });
    this.watchers.add(w);
    if (!this.closed) w.start();
    return () => {
      w.stop();
      this.watchers.delete(w);
    };
  }

  /**
   * Readiness: a read answers and (store/write-health.ts) no assignment failed since the last
   * write that committed, or the probe finds the database writable now: neither a standby
   * (pg_is_in_recovery) nor read-only by default (default_transaction_read_only, which the
   * assignment's plain BEGIN inherits). The probe writes nothing, so it cannot see a full disk:
   * after one, readiness comes back at the next ping and goes again at the next failure.
   */
  async ping(): Promise<void> {
    await this.query('SELECT 1', []);
    await this.group.writes.check(async () => {
      const { rows } = await this.query<{ read_only: boolean }>(
        "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on' AS read_only",
        [],
      );
      if (rows[0]?.read_only)
        throw new StoreUnavailableError(
          'PostgreSQL store unavailable: the database is read-only (a standby, or ' +
            'default_transaction_read_only is on), so new assignments cannot be written',
        );
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.watchers) w.stop();
    this.watchers.clear();
    await this.pool.end().catch(() => undefined);
  }
}

/** The body of an assignment transaction; the caller has opened it. */
async function assignLocked(
  c: pg.PoolClient,
  kind: string,
  items: AssignInput[],
): Promise<BatchResult<AssignResult>[]> {
  await c.query(SQL.lockKind, [kind]);
  const names = [...new Set(items.map((i) => i.name))];
  const { rows } = await c.query<{ name: string | null; bucket: string; count: string | null }>(SQL.existingAndCounts, [
    kind,
    names,
  ]);
  const existing = new Map<string, string>();
  const counts = new Map<string, number>();
  for (const r of rows) {
    if (r.name === null) counts.set(r.bucket, Number(r.count));
    else existing.set(r.name, r.bucket);
  }
  const plan = planAssignments(kind, items, existing, counts);
  if (plan.inserts.length > 0)
    await c.query(SQL.insertMany, [kind, plan.inserts.map((i) => i.name), plan.inserts.map((i) => i.bucket)]);
  return plan.results;
}

/** The cluster's system identifier (a standby shares its primary's) and the database's name. */
export interface DatabaseIdentity {
  /** null when this role may not call pg_control_system(). */
  readonly systemId: string | null;
  readonly database: string;
}

async function databaseIdentity(client: pg.Client): Promise<DatabaseIdentity> {
  const database = (await client.query<{ db: string }>('SELECT current_database() AS db')).rows[0]!.db;
  try {
    const { rows } = await client.query<{ id: string }>(
      'SELECT system_identifier::text AS id FROM pg_control_system()',
    );
    return { systemId: rows[0]?.id ?? null, database };
  } catch {
    return { systemId: null, database };
  }
}

async function checkServer(client: pg.Client): Promise<void> {
  const { rows } = await client.query<{ server_encoding: string }>(SQL.serverEncoding);
  const enc = rows[0]?.server_encoding;
  if (enc !== 'UTF8') {
    throw new StoreUnavailableError(
      `the PostgreSQL database uses encoding ${enc}, but names are stored as UTF-8: create the database with ` +
        `ENCODING 'UTF8'`,
    );
  }
}

/** Applies pending migrations in one transaction under the migrations advisory lock. */
async function migrate(client: pg.Client, log: Logger): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query(SQL.lockMigrations);
    // No DDL when the schema is current: a role without CREATE on the schema can then run.
    const { exists } = (await client.query<{ exists: boolean }>(SQL.migrationsTableExists)).rows[0]!;
    if (!exists) await client.query(SQL.migrationsTable);
    const current = exists ? (await client.query<{ version: number }>(SQL.schemaVersion)).rows[0]!.version : 0;
    for (const m of pendingMigrations(POSTGRES_MIGRATIONS, current)) {
      await client.query(m.sql);
      await client.query(SQL.recordMigration, [m.version, m.name]);
      log.info({ event: 'migrated', version: m.version, name: m.name }, `schema migrated to version ${m.version}`);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** At open, any database error (a missing permission to create tables, too) means "cannot start". */
function convertOpenError(err: unknown, location: string): unknown {
  if (err instanceof ShardError && !(err instanceof StoreUnavailableError)) return err;
  const c = convertPgError(err);
  const detail =
    c instanceof StoreUnavailableError
      ? c.message
      : err instanceof pg.DatabaseError
        ? `${err.message} (${err.code})`
        : undefined;
  if (detail === undefined) return c;
  return new StoreUnavailableError(`cannot open PostgreSQL database ${location}: ${detail}`, { cause: err });
}
