/**
 * Checks of where assignments are stored: the `database` URL (parsed by src/config/postgres.ts,
 * never echoed: it may hold a password), the `postgres:` section, and the rules between them
 * and the `store:` section.
 */
import { POSTGRES_URL_PATTERN, type PgSslMode, checkSslMode, failoverConflicts, failoverOptions, parsePostgresUrl } from './postgres.js';
import { type Problems, describe, intKey, isObject, optionalPath, section, strKey, unknownKeys } from './rules.js';
import type { Config, DatabaseConfig, PostgresOptions, RawConfig } from './types.js';

const sqlitePath = (url: string): string | undefined => /^sqlite:(?:\/\/)?(.+)$/.exec(url)?.[1];

export function database(p: Problems, raw: RawConfig, busyTimeoutMs: number, pg: PostgresOptions): DatabaseConfig {
  const v = strKey(p, raw.database, 'database');
  if (POSTGRES_URL_PATTERN.test(v)) {
    // Never echo the value: it may hold a password.
    const parts = parsePostgresUrl(v);
    if ('problem' in parts) p.add('database', parts.problem);
    else if (parts.password !== undefined && p.fromFlag('database')) {
      p.add('database', 'holds a password, which every user of this machine can read on a command line (ps): give it in ' + 'SHARDER_DATABASE, PGPASSWORD or postgres.password_file instead');
    } else {
      for (const x of failoverConflicts(pg, parts)) p.add(x.key, x.message);
      if (parts.password !== undefined && pg.passwordFile !== null) p.add('postgres.password_file', 'is set, but the database URL holds a password too: keep one of them');
      if (parts.sslMode !== undefined && pg.ssl.mode !== null && parts.sslMode !== pg.ssl.mode) p.add('postgres.ssl.mode', 'differs from the database URL\'s ?sslmode=: set it in one place');
      if (parts.sslRootCert !== undefined && pg.ssl.caFile !== null) p.add('postgres.ssl.ca_file', 'is set, but the database URL has ?sslrootcert= too: set it in one place');
    }
    return { backend: 'postgres', url: v, options: pg };
  }
  let path = sqlitePath(v);
  if (path === undefined) {
    p.add('database', 'must be sqlite:PATH (e.g. sqlite:./data/sharder.db) or postgres://USER@HOST:PORT/DB (or postgres: to take everything from PG* variables)');
    path = sqlitePath(p.keys.row('database').default as string)!;
  }
  return { backend: 'sqlite', path, busyTimeoutMs };
}

/** The postgres: section; validated whatever the backend, so that a typo is never silent. */
export function postgresOptions(p: Problems, raw: RawConfig): PostgresOptions {
  const s = section(p, raw, 'postgres');
  let sslRaw: Record<string, unknown> = {};
  if (s.ssl !== undefined && s.ssl !== null) {
    if (!isObject(s.ssl)) p.add('postgres.ssl', `must be a mapping with mode and ca_file, got ${describe(s.ssl)}`);
    else sslRaw = s.ssl;
  }
  unknownKeys(p, sslRaw, 'postgres.ssl', 'postgres.ssl');
  let mode: PgSslMode | null = null;
  if (sslRaw.mode !== undefined && sslRaw.mode !== null) {
    const err = typeof sslRaw.mode === 'string' ? checkSslMode(sslRaw.mode) : 'must be a string';
    if (err) p.add('postgres.ssl.mode', `${err}, got ${describe(sslRaw.mode)}`);
    else mode = sslRaw.mode as PgSslMode;
  }
  const caFile = optionalPath(p, sslRaw.ca_file, 'postgres.ssl.ca_file');
  if (mode === 'disable' && caFile !== null) p.add('postgres.ssl.ca_file', 'is set, but postgres.ssl.mode is disable: remove it or choose verify-full');
  const failover = failoverOptions(s);
  for (const x of failover.problems) p.add(x.key, x.message);
  return {
    poolMax: intKey(p, s.pool_max, 'postgres.pool_max'),
    idleTimeoutMs: intKey(p, s.idle_timeout_ms, 'postgres.idle_timeout_ms'),
    connectionTimeoutMs: intKey(p, s.connection_timeout_ms, 'postgres.connection_timeout_ms'),
    statementTimeoutMs: intKey(p, s.statement_timeout_ms, 'postgres.statement_timeout_ms'),
    passwordFile: optionalPath(p, s.password_file, 'postgres.password_file'),
    ssl: { mode, caFile },
    hosts: failover.hosts,
    targetSessionAttrs: failover.targetSessionAttrs,
  };
}

/** `store.snapshot_file`: a PostgreSQL instance's local copy, written by one process. */
export function snapshotRules(p: Problems, config: Config): void {
  if (config.store.snapshotFile !== null && config.database.backend !== 'postgres') {
    p.add('store.snapshot_file', 'is for PostgreSQL (a local copy of its table for starting while it is away); with SQLite the database ' + 'is a local file already');
  }
  if (config.store.snapshotFile !== null && config.workers > 1) {
    p.add('store.snapshot_file', `is written by one process; with workers: ${config.workers} each worker would write it: run one worker ` + 'per instance with a snapshot');
  }
}
