/**
 * The PostgreSQL connection URL, parsed without I/O so that `check-config` can report its
 * problems. Messages never repeat the URL or any of its values: it may hold a password.
 *
 * Accepted forms (libpq's URI syntax, the subset an operator needs):
 *   postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=verify-full&sslrootcert=/path/ca.pem
 *   postgres:///DATABASE?host=/var/run/postgresql       (Unix socket directory)
 *   postgres:  or  postgres://                          (every part from PG* variables)
 * `postgresql:` works the same. Parts the URL leaves out come from PGHOST, PGPORT, PGUSER,
 * PGPASSWORD, PGDATABASE, PGSSLMODE, PGSSLROOTCERT, then libpq's defaults (see
 * src/store/postgres-connect.ts, which resolves them when the store opens).
 */
import { PG_SSL_MODES, type PgSslMode } from './types.js';

export interface PostgresUrlParts {
  readonly host?: string;
  readonly port?: number;
  readonly user?: string;
  readonly password?: string;
  readonly database?: string;
  readonly sslMode?: PgSslMode;
  readonly sslRootCert?: string;
  readonly applicationName?: string;
}

/** Query parameters understood, with libpq's names. */
const URL_PARAMS = ['host', 'port', 'user', 'dbname', 'sslmode', 'sslrootcert', 'application_name'] as const;

export const POSTGRES_URL_PATTERN = /^postgres(ql)?:/;

/** Checks a libpq sslmode value; returns an error text or undefined. */
export function checkSslMode(v: string): string | undefined {
  if ((PG_SSL_MODES as readonly string[]).includes(v)) return undefined;
  if (v === 'prefer' || v === 'allow') {
    return `sslmode "${v}" is not supported (the driver cannot fall back between TLS and plain): use ${PG_SSL_MODES.join(', ')}`;
  }
  return `must be one of ${PG_SSL_MODES.join(', ')}`;
}

export function checkPort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : undefined;
}

function decode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

/** Parses a postgres: URL into its parts, or returns what is wrong (never echoing values). */
export function parsePostgresUrl(text: string): PostgresUrlParts | { problem: string } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { problem: 'is not a valid postgres:// URL (write postgres://USER@HOST:PORT/DATABASE; percent-encode special characters in the password, or use postgres.password_file)' };
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') return { problem: 'must start with postgres:// or postgresql://' };
  if (url.hash) return { problem: 'must not have a #fragment' };
  const parts: { -readonly [K in keyof PostgresUrlParts]: PostgresUrlParts[K] } = {};
  const bad = (what: string): { problem: string } => ({ problem: `has an invalid ${what} (check its percent-encoding)` });

  if (url.hostname !== '') parts.host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (url.port !== '') parts.port = Number(url.port);
  if (url.username !== '') {
    const u = decode(url.username);
    if (u === undefined) return bad('user name');
    parts.user = u;
  }
  if (url.password !== '') {
    const p = decode(url.password);
    if (p === undefined) return bad('password');
    parts.password = p;
  }
  const path = url.pathname.replace(/^\//, '');
  if (path !== '') {
    const d = decode(path);
    if (d === undefined || d.includes('/')) return bad('database name');
    parts.database = d;
  }

  const seen = new Set<string>();
  for (const [key, rawValue] of url.searchParams) {
    if (!(URL_PARAMS as readonly string[]).includes(key)) {
      return { problem: `has the unsupported parameter "${key.slice(0, 40)}" (supported: ${URL_PARAMS.join(', ')}; pool and timeouts go in the postgres: section)` };
    }
    if (seen.has(key)) return { problem: `has the parameter "${key}" more than once` };
    seen.add(key);
    const value = rawValue;
    switch (key as (typeof URL_PARAMS)[number]) {
      case 'host':
        if (parts.host !== undefined) return { problem: 'names the host twice (in the authority and in ?host=)' };
        if (value === '') return { problem: 'has an empty ?host=' };
        parts.host = value;
        break;
      case 'port': {
        if (parts.port !== undefined) return { problem: 'names the port twice (after the host and in ?port=)' };
        const n = checkPort(value);
        if (n === undefined) return { problem: 'has a ?port= that is not a port number 1-65535' };
        parts.port = n;
        break;
      }
      case 'user':
        if (parts.user !== undefined) return { problem: 'names the user twice (before @ and in ?user=)' };
        parts.user = value;
        break;
      case 'dbname':
        if (parts.database !== undefined) return { problem: 'names the database twice (in the path and in ?dbname=)' };
        parts.database = value;
        break;
      case 'sslmode': {
        const err = checkSslMode(value);
        if (err) return { problem: `?sslmode= ${err}` };
        parts.sslMode = value as PgSslMode;
        break;
      }
      case 'sslrootcert':
        parts.sslRootCert = value;
        break;
      case 'application_name':
        parts.applicationName = value;
        break;
    }
  }
  if (parts.port !== undefined && (parts.port < 1 || parts.port > 65535)) return { problem: 'has a port outside 1-65535' };
  return parts;
}
