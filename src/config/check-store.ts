/**
 * Checks of where assignments are stored: the `database` URL (parsed by src/config/postgres.ts and mariadb.ts,
 * never echoed: it may hold a password), the `postgres:` and `mariadb:` sections, and the rules between them
 * and the `store:` section.
 */
import {
  POSTGRES_URL_PATTERN,
  type PgSslMode,
  checkSslMode,
  failoverConflicts,
  failoverOptions,
  parsePostgresUrl,
} from './postgres.js';
import { type Problems, describe, intKey, isObject, optionalPath, section, strKey, unknownKeys } from './rules.js';
import { MARIADB_URL_PATTERN, parseMariadbUrl } from './mariadb.js';
import type {
  Config,
  DatabaseConfig,
  MariadbOptions,
  PostgresOptions,
  RawConfig,
  ServerDatabaseOptions,
} from './types.js';

const sqlitePath = (url: string): string | undefined => /^sqlite:(?:\/\/)?(.+)$/.exec(url)?.[1];

/** What a server database's URL may hold, to check against its section. */
interface ServerUrlParts {
  readonly password?: string | undefined;
  readonly sslMode?: PgSslMode | undefined;
  readonly sslRootCert?: string | undefined;
}

/**
 * The URL of a server database (postgres:, mariadb:) against its section: a password on the
 * command line, then `more` (the backend's own), then settings given twice. Never echoes the
 * value: it may hold a password.
 */
function serverUrl(
  p: Problems,
  parts: ServerUrlParts | { problem: string },
  name: 'postgres' | 'mariadb',
  o: ServerDatabaseOptions,
  passwordVariable: string,
  more: readonly { key: string; message: string }[] = [],
): void {
  if ('problem' in parts) {
    p.add('database', parts.problem);
    return;
  }
  if (parts.password !== undefined && p.fromFlag('database')) {
    p.add(
      'database',
      'holds a password, which every user of this machine can read on a command line (ps): give it in ' +
        `SHARDER_DATABASE, ${passwordVariable} or ${name}.password_file instead`,
    );
    return;
  }
  for (const x of more) p.add(x.key, x.message);
  if (parts.password !== undefined && o.passwordFile !== null)
    p.add(`${name}.password_file`, 'is set, but the database URL holds a password too: keep one of them');
  if (parts.sslMode !== undefined && o.ssl.mode !== null && parts.sslMode !== o.ssl.mode)
    p.add(`${name}.ssl.mode`, "differs from the database URL's ?sslmode=: set it in one place");
  if (parts.sslRootCert !== undefined && o.ssl.caFile !== null)
    p.add(`${name}.ssl.ca_file`, 'is set, but the database URL has ?sslrootcert= too: set it in one place');
}

export function database(
  p: Problems,
  raw: RawConfig,
  busyTimeoutMs: number,
  pg: PostgresOptions,
  my: MariadbOptions,
): DatabaseConfig {
  const v = strKey(p, raw.database, 'database');
  if (MARIADB_URL_PATTERN.test(v)) {
    serverUrl(p, parseMariadbUrl(v), 'mariadb', my, 'MYSQL_PWD');
    return { backend: 'mariadb', url: v, options: my };
  }
  if (POSTGRES_URL_PATTERN.test(v)) {
    const parts = parsePostgresUrl(v);
    serverUrl(p, parts, 'postgres', pg, 'PGPASSWORD', 'problem' in parts ? [] : failoverConflicts(pg, parts));
    return { backend: 'postgres', url: v, options: pg };
  }
  let path = sqlitePath(v);
  if (path === undefined) {
    p.add(
      'database',
      'must be sqlite:PATH (e.g. sqlite:./data/sharder.db), postgres://USER@HOST:PORT/DB (or postgres: to take everything from PG* variables) or mysql://USER@HOST:PORT/DB (MariaDB or MySQL; mariadb:// too)',
    );
    path = sqlitePath(p.keys.row('database').default as string)!;
  }
  return { backend: 'sqlite', path, busyTimeoutMs };
}

/**
 * What the postgres: and mariadb: sections share (pool, timeouts, password file, TLS);
 * validated whatever the backend, so that a typo is never silent.
 */
function serverOptions(
  p: Problems,
  raw: RawConfig,
  name: 'postgres' | 'mariadb',
): { s: Record<string, unknown>; o: ServerDatabaseOptions } {
  const s = section(p, raw, name);
  let sslRaw: Record<string, unknown> = {};
  if (s.ssl !== undefined && s.ssl !== null) {
    if (!isObject(s.ssl)) p.add(`${name}.ssl`, `must be a mapping with mode and ca_file, got ${describe(s.ssl)}`);
    else sslRaw = s.ssl;
  }
  unknownKeys(p, sslRaw, `${name}.ssl`, `${name}.ssl`);
  let mode: PgSslMode | null = null;
  if (sslRaw.mode !== undefined && sslRaw.mode !== null) {
    const err = typeof sslRaw.mode === 'string' ? checkSslMode(sslRaw.mode) : 'must be a string';
    if (err) p.add(`${name}.ssl.mode`, `${err}, got ${describe(sslRaw.mode)}`);
    else mode = sslRaw.mode as PgSslMode;
  }
  const caFile = optionalPath(p, sslRaw.ca_file, `${name}.ssl.ca_file`);
  if (mode === 'disable' && caFile !== null)
    p.add(`${name}.ssl.ca_file`, `is set, but ${name}.ssl.mode is disable: remove it or choose verify-full`);
  const o = {
    poolMax: intKey(p, s.pool_max, `${name}.pool_max`),
    idleTimeoutMs: intKey(p, s.idle_timeout_ms, `${name}.idle_timeout_ms`),
    connectionTimeoutMs: intKey(p, s.connection_timeout_ms, `${name}.connection_timeout_ms`),
    statementTimeoutMs: intKey(p, s.statement_timeout_ms, `${name}.statement_timeout_ms`),
    passwordFile: optionalPath(p, s.password_file, `${name}.password_file`),
    ssl: { mode, caFile },
  };
  return { s, o };
}

/** The postgres: section: the shared server options and failover. */
export function postgresOptions(p: Problems, raw: RawConfig): PostgresOptions {
  const { s, o } = serverOptions(p, raw, 'postgres');
  const failover = failoverOptions(s);
  for (const x of failover.problems) p.add(x.key, x.message);
  return { ...o, hosts: failover.hosts, targetSessionAttrs: failover.targetSessionAttrs };
}

/** The mariadb: section (MariaDB or MySQL): the shared server options. */
export function mariadbOptions(p: Problems, raw: RawConfig): MariadbOptions {
  return serverOptions(p, raw, 'mariadb').o;
}

/** `store.snapshot_file`: a PostgreSQL instance's local copy, written by one process. */
export function snapshotRules(p: Problems, config: Config): void {
  if (config.store.snapshotFile !== null && config.database.backend !== 'postgres') {
    p.add(
      'store.snapshot_file',
      'is for PostgreSQL (a local copy of its table for starting while it is away); with SQLite the database ' +
        'is a local file already',
    );
  }
  if (config.store.snapshotFile !== null && config.workers > 1) {
    p.add(
      'store.snapshot_file',
      `is written by one process; with workers: ${config.workers} each worker would write it: run one worker ` +
        'per instance with a snapshot',
    );
  }
}
