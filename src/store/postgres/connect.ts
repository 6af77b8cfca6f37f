/**
 * From validated configuration to pg connection settings, and pg errors to ShardErrors: the
 * two edges of the PostgreSQL backend.
 *
 * Each connection part is taken from, in order: the database URL, the PG* environment
 * variable libpq reads (PGHOST, PGPORT, PGUSER, PGDATABASE, PGSSLMODE, PGSSLROOTCERT,
 * PGAPPNAME), then libpq's default. The password: the URL, else postgres.password_file, else
 * PGPASSWORD, else ~/.pgpass (PGPASSFILE), which pg reads itself. The password is kept in a
 * non-enumerable property (as pg does), so it never appears when a config object is logged or
 * serialised, and `location` never contains it.
 */
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import pg from 'pg';
import type { PgSslMode, PostgresOptions } from '../../config/types.js';
import {
  checkPort,
  checkSslMode,
  parsePostgresUrl,
  type PgHost,
  type PgTargetSessionAttrs,
} from '../../config/postgres.js';
import { ConfigError, ShardError, StoreUnavailableError, type ConfigProblem } from '../../errors.js';
import { hidePassword, nonEmpty, readPasswordFile, tlsOptions } from '../connect.js';

/** Default application_name, shown in pg_stat_activity. */
export const DEFAULT_APPLICATION_NAME = 'sharder';
/** The client-side query timeout exceeds the server-side statement_timeout by this much, so
 * the server's cancel normally comes first; the client's catches a dead network. */
const QUERY_TIMEOUT_MARGIN_MS = 1_000;
/** TCP keepalive on every connection, so that a silently dropped peer is noticed. */
const KEEPALIVE_INITIAL_DELAY_MS = 10_000;

export interface PostgresConnection {
  /** Settings for one connection (the pool's and the LISTEN connection's); password hidden. */
  readonly client: pg.ClientConfig;
  /** The pool's settings: `client` plus sizes and timeouts. */
  readonly pool: pg.PoolConfig;
  /** postgres://user@host:port/database (every host, comma-separated), never with the password. */
  readonly location: string;
  readonly statementTimeoutMs: number;
  /** Hosts to try in order; `client` and `pool` name the first (see hosts.ts). */
  readonly hosts: readonly { readonly host: string; readonly port: number }[];
  readonly targetSessionAttrs: PgTargetSessionAttrs;
}

interface Source {
  /** The config file, for ConfigError. */
  file: string;
  env: NodeJS.ProcessEnv;
  readFile?: (path: string) => Buffer;
}

/** Resolves the connection settings; reads the password and CA files. Throws ConfigError. */
export function resolvePostgres(db: { url: string; options: PostgresOptions }, src: Source): PostgresConnection {
  const { env } = src;
  const readFile = src.readFile ?? ((path: string) => readFileSync(path));
  const problems: ConfigProblem[] = [];
  const fromFile = (key: string, message: string): void => void problems.push({ source: src.file, key, message });
  const fromEnv = (key: string, message: string): void => void problems.push({ source: 'environment', key, message });
  const o = db.options;

  const parts = parsePostgresUrl(db.url);
  if ('problem' in parts) throw new ConfigError([{ source: src.file, key: 'database', message: parts.problem }]);

  let defaultPort = 5432;
  if (nonEmpty(env.PGPORT) !== undefined) {
    const n = checkPort(env.PGPORT!);
    if (n === undefined && parts.port === undefined) fromEnv('PGPORT', 'is not a port number 1-65535');
    else if (n !== undefined) defaultPort = n;
  }
  // libpq's order: the URL's host list, else postgres.hosts, else PGHOST (which may be a list too).
  const envHosts = nonEmpty(env.PGHOST)?.split(',');
  const listed: readonly PgHost[] | undefined =
    parts.hosts ??
    o.hosts ??
    (parts.host === undefined && envHosts !== undefined && envHosts.length > 1
      ? envHosts.map((h) => ({ host: h }))
      : undefined);
  const hosts =
    listed !== undefined
      ? listed.map((h) => ({ host: h.host, port: h.port ?? parts.port ?? defaultPort }))
      : [{ host: parts.host ?? nonEmpty(env.PGHOST) ?? 'localhost', port: parts.port ?? defaultPort }];
  const { host, port } = hosts[0]!;
  const targetSessionAttrs: PgTargetSessionAttrs =
    parts.targetSessionAttrs ?? o.targetSessionAttrs ?? (hosts.length > 1 ? 'read-write' : 'any');
  const user = parts.user ?? nonEmpty(env.PGUSER) ?? nonEmpty(env.USER) ?? osUser() ?? '';
  if (user === '') fromEnv('PGUSER', 'no database user: name one in the URL (postgres://USER@HOST/DB) or in PGUSER');
  const database = parts.database ?? nonEmpty(env.PGDATABASE) ?? user;

  let password: string | undefined = parts.password;
  if (password === undefined && o.passwordFile !== null)
    password = readPasswordFile(readFile, o.passwordFile, 'postgres.password_file', fromFile);
  if (password === undefined && env.PGPASSWORD !== undefined && env.PGPASSWORD !== '') password = env.PGPASSWORD;

  let mode: PgSslMode = 'disable';
  if (parts.sslMode !== undefined) mode = parts.sslMode;
  else if (o.ssl.mode !== null) mode = o.ssl.mode;
  else if (nonEmpty(env.PGSSLMODE) !== undefined) {
    const err = checkSslMode(env.PGSSLMODE!);
    if (err) fromEnv('PGSSLMODE', err);
    else mode = env.PGSSLMODE as PgSslMode;
  }
  const caFile = parts.sslRootCert ?? o.ssl.caFile ?? nonEmpty(env.PGSSLROOTCERT) ?? null;
  let ca: Buffer | undefined;
  if (mode !== 'disable' && caFile !== null) {
    try {
      ca = readFile(caFile);
    } catch (err) {
      const key =
        parts.sslRootCert !== undefined ? 'database' : o.ssl.caFile !== null ? 'postgres.ssl.ca_file' : 'PGSSLROOTCERT';
      (key === 'PGSSLROOTCERT' ? fromEnv : fromFile)(
        key,
        `CA file cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const client: pg.ClientConfig = {
    host,
    port,
    user,
    database,
    ssl: tlsOptions(mode, ca),
    application_name: parts.applicationName ?? nonEmpty(env.PGAPPNAME) ?? DEFAULT_APPLICATION_NAME,
    statement_timeout: o.statementTimeoutMs,
    // A transaction is never idle for long in the sharder; one left open (a hung or
    // partitioned instance) would hold its kind's assignment lock, so the server ends it.
    idle_in_transaction_session_timeout: o.statementTimeoutMs,
    query_timeout: o.statementTimeoutMs + QUERY_TIMEOUT_MARGIN_MS,
    connectionTimeoutMillis: o.connectionTimeoutMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: KEEPALIVE_INITIAL_DELAY_MS,
  };
  hidePassword(client, password);
  const pool: pg.PoolConfig = {
    ...client,
    max: o.poolMax,
    idleTimeoutMillis: o.idleTimeoutMs,
    connectionTimeoutMillis: o.connectionTimeoutMs,
  };
  hidePassword(pool, password);
  const where = hosts
    .map((h) => (h.host.startsWith('/') || h.host.includes(':') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`))
    .join(',');
  return {
    client,
    pool,
    location: `postgres://${encodeURIComponent(user)}@${where}/${encodeURIComponent(database)}`,
    statementTimeoutMs: o.statementTimeoutMs,
    hosts,
    targetSessionAttrs,
  };
}

/** A copy of connection settings with some replaced, the password still hidden. */
export function withSettings(base: pg.ClientConfig, over: Partial<pg.ClientConfig>): pg.ClientConfig {
  const copy: pg.ClientConfig = { ...base, ...over };
  hidePassword(copy, (base as { password?: string }).password);
  return copy;
}

/** The OS user's name; undefined where the uid has no passwd entry (some containers). */
function osUser(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return undefined;
  }
}

/**
 * SQLSTATE classes and codes that mean "the store cannot serve now" (retry later), not a bug:
 * connection exceptions (08), insufficient resources (53), operator intervention such as
 * shutdown or statement timeout (57), system errors (58), internal errors (XX), bad
 * credentials or missing database (28, 3D), a database not accepting connections or a lock
 * timeout (55), a read-only standby after failover (25006), serialisation failures and
 * deadlocks (40001, 40P01).
 */
const UNAVAILABLE_SQLSTATE = /^(08|53|55|57|58|XX|28|3D)|^(25006|40001|40P01)$/;

/** Converts an error from pg into a ShardError where it means "unavailable". */
export function convertPgError(err: unknown): unknown {
  if (err instanceof ShardError) return err;
  if (err instanceof pg.DatabaseError) {
    if (typeof err.code === 'string' && UNAVAILABLE_SQLSTATE.test(err.code)) {
      return new StoreUnavailableError(`PostgreSQL store unavailable (${err.code}): ${err.message}`, { cause: err });
    }
    return err;
  }
  // Everything else pg raises is a plain Error (connection refused or reset, TLS failures,
  // "Connection terminated", "timeout exceeded when trying to connect", "Query read
  // timeout"); a TypeError or the like would be a bug and stays as it is.
  if (err instanceof Error && (err.constructor === Error || typeof (err as NodeJS.ErrnoException).code === 'string')) {
    const code = (err as NodeJS.ErrnoException).code;
    return new StoreUnavailableError(`PostgreSQL store unavailable${code ? ` (${code})` : ''}: ${err.message}`, {
      cause: err,
    });
  }
  return err;
}

/** True for a unique violation, e.g. a racing insert by a writer that took no kind lock. */
export function isUniqueViolation(err: unknown): boolean {
  return err instanceof pg.DatabaseError && err.code === '23505';
}
