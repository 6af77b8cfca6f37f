/**
 * From validated configuration to mysql2 pool settings, and mysql2 errors to ShardErrors: the
 * two edges of the MariaDB/MySQL backend.
 *
 * The password: the URL, else mariadb.password_file, else MYSQL_PWD (the variable the mysql
 * and mariadb clients read). It is kept in a non-enumerable property, so it never appears when
 * the settings are logged or serialised, and `location` never contains it. TLS follows the
 * same sslmode names as PostgreSQL (store/connect.ts).
 */
import { readFileSync } from 'node:fs';
import type mysql from 'mysql2';
import type { PoolOptions } from 'mysql2';
import { parseMariadbUrl } from '../../config/mariadb.js';
import type { MariadbOptions, PgSslMode } from '../../config/types.js';
import { ConfigError, ShardError, StoreUnavailableError, type ConfigProblem } from '../../errors.js';
import { hidePassword, nonEmpty, readPasswordFile, tlsOptions } from '../connect.js';

/** The client-side timeout of a query exceeds the server-side limits by this much. */
const QUERY_TIMEOUT_MARGIN_MS = 1_000;

export interface MariadbConnection {
  /** mysql2 pool settings (password hidden). */
  readonly pool: PoolOptions;
  /** mysql://user@host:port/database (or …@[socket]/database), never with the password. */
  readonly location: string;
  /** Client-side limit of one query, ms (store.statement_timeout_ms plus a margin). */
  readonly queryTimeoutMs: number;
  readonly statementTimeoutMs: number;
}

interface Source {
  file: string;
  env: NodeJS.ProcessEnv;
  readFile?: (path: string) => Buffer;
}

/** Resolves the connection settings; reads the password and CA files. Throws ConfigError. */
export function resolveMariadb(db: { url: string; options: MariadbOptions }, src: Source): MariadbConnection {
  const readFile = src.readFile ?? ((path: string) => readFileSync(path));
  const problems: ConfigProblem[] = [];
  const fromFile = (key: string, message: string): void => void problems.push({ source: src.file, key, message });
  const o = db.options;
  const parts = parseMariadbUrl(db.url);
  if ('problem' in parts) throw new ConfigError([{ source: src.file, key: 'database', message: parts.problem }]);
  const user = parts.user ?? nonEmpty(src.env.USER) ?? 'root';

  let password = parts.password;
  if (password === undefined && o.passwordFile !== null)
    password = readPasswordFile(readFile, o.passwordFile, 'mariadb.password_file', fromFile);
  if (password === undefined) password = nonEmpty(src.env.MYSQL_PWD);

  const mode: PgSslMode = parts.sslMode ?? o.ssl.mode ?? 'disable';
  const caFile = parts.sslRootCert ?? o.ssl.caFile;
  let ca: Buffer | undefined;
  if (mode !== 'disable' && caFile !== null) {
    try {
      ca = readFile(caFile);
    } catch (err) {
      fromFile(
        parts.sslRootCert !== undefined ? 'database' : 'mariadb.ssl.ca_file',
        `CA file cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      );
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const tls = tlsOptions(mode, ca);

  const pool: PoolOptions = {
    ...(parts.socket !== undefined ? { socketPath: parts.socket } : { host: parts.host, port: parts.port }),
    user,
    database: parts.database,
    ...(tls === false ? {} : { ssl: tls as mysql.SslOptions }),
    connectionLimit: o.poolMax,
    maxIdle: o.poolMax,
    idleTimeout: o.idleTimeoutMs,
    connectTimeout: o.connectionTimeoutMs,
    enableKeepAlive: true,
    keepAliveInitialDelay: 10_000,
    // Names and buckets are compared and sorted in the schema's utf8mb4_nopad_bin collation.
    charset: 'utf8mb4_bin',
    // Unix milliseconds are BIGINT: as numbers (they stay below 2^53), not strings.
    supportBigNumbers: true,
    bigNumberStrings: false,
    dateStrings: true,
    timezone: 'Z',
    waitForConnections: true,
    queueLimit: 0,
  };
  hidePassword(pool, password);
  const where =
    parts.socket !== undefined
      ? `[${parts.socket}]`
      : `${parts.host.includes(':') ? `[${parts.host}]` : parts.host}:${parts.port}`;
  return {
    pool,
    location: `mysql://${encodeURIComponent(user)}@${where}/${encodeURIComponent(parts.database)}`,
    queryTimeoutMs: o.statementTimeoutMs + QUERY_TIMEOUT_MARGIN_MS,
    statementTimeoutMs: o.statementTimeoutMs,
  };
}

/**
 * MariaDB/MySQL error numbers that mean "the store cannot serve now", not a bug: lock wait
 * timeout (1205), deadlock (1213), query interrupted or timed out (1317, 1969, 3024),
 * too many connections (1040), access denied (1044, 1045), unknown database (1049), server
 * shutdown (1053), read-only (1290, 1792), out of resources (1041, 1135).
 */
const UNAVAILABLE_ERRNO = new Set([1040, 1041, 1044, 1045, 1049, 1053, 1135, 1205, 1213, 1290, 1317, 1792, 1969, 3024]);

/** Driver-level codes (no server answer): lost or refused connections, timeouts. */
const UNAVAILABLE_CODE =
  /^(PROTOCOL_|ECONN|EPIPE|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ENOENT|POOL_CLOSED|HANDSHAKE_)/;

/** Converts an error from mysql2 into a ShardError where it means "unavailable". */
export function convertMariadbError(err: unknown): unknown {
  if (err instanceof ShardError) return err;
  const e = err as { errno?: unknown; code?: unknown; message?: unknown; sqlState?: unknown } | null;
  if (e === null || typeof e !== 'object') return err;
  const code = typeof e.code === 'string' ? e.code : '';
  const serverErr = typeof e.sqlState === 'string';
  const unavailable = serverErr
    ? typeof e.errno === 'number' && UNAVAILABLE_ERRNO.has(e.errno)
    : UNAVAILABLE_CODE.test(code) || /closed state|timeout/i.test(String(e.message));
  if (unavailable) {
    return new StoreUnavailableError(`MariaDB store unavailable${code ? ` (${code})` : ''}: ${String(e.message)}`, {
      cause: err,
    });
  }
  return err;
}

/** True for a duplicate key (ER_DUP_ENTRY): a racing insert by a writer that took no kind lock. */
export function isDuplicateKey(err: unknown): boolean {
  return (err as { errno?: unknown } | null)?.errno === 1062;
}

/** True when the connection died rather than the statement failing: worth one more try on another connection. */
export function isConnectionLost(err: unknown): boolean {
  const e = (err instanceof ShardError && err.cause !== undefined ? err.cause : err) as {
    code?: unknown;
    sqlState?: unknown;
  } | null;
  return (
    e !== null &&
    typeof e === 'object' &&
    e.sqlState === undefined &&
    typeof e.code === 'string' &&
    /^(PROTOCOL_CONNECTION_LOST|ECONNRESET|EPIPE)$/.test(e.code)
  );
}
