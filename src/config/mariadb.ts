/**
 * The MariaDB/MySQL connection URL, parsed without I/O so that `check-config` can report its
 * problems: mysql://USER[:PASSWORD]@HOST[:PORT]/DB or mariadb://…, with optional
 * ?sslmode=disable|require|verify-ca|verify-full (as for PostgreSQL), ?sslrootcert=FILE and
 * ?socket=PATH (a Unix socket instead of TCP). The store resolves it (store/mariadb/connect.ts).
 */
import { PG_SSL_MODES } from './postgres.js';
import type { PgSslMode } from './types.js';

export const MARIADB_URL_PATTERN = /^(?:mysql|mariadb):\/\//i;

/** MariaDB's and MySQL's port. */
export const DEFAULT_MARIADB_PORT = 3306;

export interface MariadbUrl {
  readonly user?: string;
  readonly password?: string;
  readonly host: string;
  readonly port: number;
  readonly database: string;
  readonly socket?: string;
  readonly sslMode?: PgSslMode;
  readonly sslRootCert?: string;
}

const PARAMS = ['sslmode', 'sslrootcert', 'socket'];

/** The parts of a mysql:// or mariadb:// URL, or what is wrong with it (never echoing the password). */
export function parseMariadbUrl(url: string): MariadbUrl | { problem: string } {
  let u: URL;
  try {
    u = new URL(url.replace(MARIADB_URL_PATTERN, 'mysql://'));
  } catch {
    return { problem: 'is not a valid URL: mysql://USER@HOST:3306/DB (or mariadb://…)' };
  }
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  if (database === '' || database.includes('/')) return { problem: 'names no database: mysql://USER@HOST:3306/DB' };
  const port = u.port === '' ? DEFAULT_MARIADB_PORT : Number(u.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return { problem: 'has a port outside 1-65535' };
  const out: { -readonly [K in keyof MariadbUrl]: MariadbUrl[K] } = {
    host: u.hostname.replace(/^\[|\]$/g, '') || 'localhost',
    port,
    database,
  };
  if (u.username !== '') out.user = decodeURIComponent(u.username);
  if (u.password !== '') out.password = decodeURIComponent(u.password);
  for (const [key, value] of u.searchParams) {
    if (!PARAMS.includes(key))
      return { problem: `has an unknown parameter ?${key}=: use ${PARAMS.map((p) => `?${p}=`).join(', ')}` };
    if (key === 'sslmode') {
      if (!(PG_SSL_MODES as readonly string[]).includes(value))
        return { problem: `?sslmode= must be one of ${PG_SSL_MODES.join(', ')}` };
      out.sslMode = value as PgSslMode;
    } else if (key === 'sslrootcert') out.sslRootCert = value;
    else out.socket = value;
  }
  return out;
}
