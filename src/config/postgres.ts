/**
 * The PostgreSQL connection URL, parsed without I/O so that `check-config` can report its
 * problems. Messages never repeat the URL or any of its values: it may hold a password.
 *
 * Accepted forms (libpq's URI syntax, the subset an operator needs):
 *   postgres://USER:PASSWORD@HOST:PORT/DATABASE?sslmode=verify-full&sslrootcert=/path/ca.pem
 *   postgres:///DATABASE?host=/var/run/postgresql       (Unix socket directory)
 *   postgres:  or  postgres://                          (every part from PG* variables)
 *   postgres://USER@H1:5432,H2:5432/DATABASE?target_session_attrs=read-write   (failover)
 *   postgres:///DATABASE?host=H1,H2&port=5432,5433      (the same, libpq's parameter form)
 * `postgresql:` works the same. With several hosts, connections go to the first one that
 * accepts them and passes target_session_attrs (default read-write with several hosts: the
 * sharder writes), tried in order, and move on by themselves after a failover (see
 * src/store/postgres/hosts.ts). Parts the URL leaves out come from PGHOST, PGPORT, PGUSER,
 * PGPASSWORD, PGDATABASE, PGSSLMODE, PGSSLROOTCERT, then libpq's defaults (see
 * src/store/postgres/connect.ts, which resolves them when the store opens).
 */
/** PostgreSQL TLS modes, as libpq names them ("prefer"/"allow" need a fallback pg cannot do). */
export const PG_SSL_MODES = ['disable', 'require', 'verify-ca', 'verify-full'] as const;
export type PgSslMode = (typeof PG_SSL_MODES)[number];

export interface PostgresUrlParts {
  readonly host?: string;
  readonly port?: number;
  readonly user?: string;
  readonly password?: string;
  readonly database?: string;
  readonly sslMode?: PgSslMode;
  readonly sslRootCert?: string;
  readonly applicationName?: string;
  /** Every host, in order, when the URL names more than one (`host`/`port` are then the first). */
  readonly hosts?: readonly PgHost[];
  readonly targetSessionAttrs?: PgTargetSessionAttrs;
}

export interface PgHost {
  readonly host: string;
  /** Absent: the port of the URL's ?port=, PGPORT, or 5432. */
  readonly port?: number;
}

/**
 * libpq's target_session_attrs values the sharder accepts: `any` (the first host that
 * connects), `read-write` (one where transaction_read_only is off, as libpq checks it) and
 * `primary` (one not in recovery). Standby choices make no sense for a writer.
 */
export const PG_TARGET_SESSION_ATTRS = ['any', 'read-write', 'primary'] as const;
export type PgTargetSessionAttrs = (typeof PG_TARGET_SESSION_ATTRS)[number];

/** Checks a target_session_attrs value; returns an error text or undefined. */
export function checkTargetSessionAttrs(v: string): string | undefined {
  if ((PG_TARGET_SESSION_ATTRS as readonly string[]).includes(v)) return undefined;
  if (v === 'read-only' || v === 'standby' || v === 'prefer-standby')
    return `"${v}" is not supported: the sharder writes (use ${PG_TARGET_SESSION_ATTRS.join(', ')})`;
  return `must be one of ${PG_TARGET_SESSION_ATTRS.join(', ')}`;
}

/** Most hosts in one URL or in postgres.hosts. */
export const MAX_PG_HOSTS = 16;

/** Parses one `HOST`, `HOST:PORT` or `[V6]:PORT`, or returns what is wrong (never echoing it). */
export function parsePgHost(text: string): PgHost | { problem: string } {
  if (text === '') return { problem: 'has an empty host in its host list' };
  let u: URL;
  try {
    u = new URL(`postgres://${text}`);
  } catch {
    return { problem: 'has an invalid host in its host list (write HOST:PORT, or [IPv6]:PORT)' };
  }
  if (
    u.hostname === '' ||
    u.username !== '' ||
    u.password !== '' ||
    u.pathname !== '' ||
    u.search !== '' ||
    u.hash !== ''
  ) {
    return { problem: 'has an invalid host in its host list (write HOST:PORT, or [IPv6]:PORT)' };
  }
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  if (u.port === '') return { host };
  const port = checkPort(u.port);
  return port === undefined ? { problem: 'has a port outside 1-65535 in its host list' } : { host, port };
}

/** Query parameters understood, with libpq's names. */
const URL_PARAMS = [
  'host',
  'port',
  'user',
  'dbname',
  'sslmode',
  'sslrootcert',
  'application_name',
  'target_session_attrs',
] as const;

export const POSTGRES_URL_PATTERN = /^postgres(ql)?:/;

/** Checks a libpq sslmode value; returns an error text or undefined. */
export function checkSslMode(v: string): string | undefined {
  if ((PG_SSL_MODES as readonly string[]).includes(v)) return undefined;
  if (v === 'prefer' || v === 'allow') {
    return (
      `sslmode "${v}" is not supported (the driver cannot fall back between TLS and plain): use ` +
      `${PG_SSL_MODES.join(', ')}`
    );
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
  // A host list (h1:5432,h2:5432) is no URL authority WHATWG can parse: take it out, parse the
  // rest with the first host in its place, then put the list back.
  let hostList: PgHost[] | undefined;
  const authority = /^(postgres(?:ql)?:\/\/)([^/?#]*)(.*)$/s.exec(text);
  const at = authority === null ? -1 : authority[2]!.lastIndexOf('@');
  if (authority !== null && authority[2]!.slice(at + 1).includes(',')) {
    const userinfo = at === -1 ? '' : authority[2]!.slice(0, at + 1);
    const entries = authority[2]!.slice(at + 1).split(',');
    if (entries.length > MAX_PG_HOSTS) return { problem: `names more than ${MAX_PG_HOSTS} hosts` };
    hostList = [];
    for (const e of entries) {
      const h = parsePgHost(e);
      if ('problem' in h) return h;
      hostList.push(h);
    }
    text = `${authority[1]}${userinfo}${entries[0]}${authority[3]}`;
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return {
      problem:
        'is not a valid postgres:// URL (write postgres://USER@HOST:PORT/DATABASE; percent-encode special characters in the password, or use postgres.password_file)',
    };
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:')
    return { problem: 'must start with postgres:// or postgresql://' };
  if (url.hash) return { problem: 'must not have a #fragment' };
  const parts: { -readonly [K in keyof PostgresUrlParts]: PostgresUrlParts[K] } = {};
  const bad = (what: string): { problem: string } => ({
    problem: `has an invalid ${what} (check its percent-encoding)`,
  });

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

  if (hostList !== undefined) {
    parts.hosts = hostList;
    // Ports belong to their hosts; one without takes the URL's ?port= (or the default), as in libpq.
    delete parts.port;
  }

  let portList: number[] | undefined;
  const seen = new Set<string>();
  for (const [key, rawValue] of url.searchParams) {
    if (!(URL_PARAMS as readonly string[]).includes(key)) {
      return {
        problem:
          `has the unsupported parameter "${key.slice(0, 40)}" (supported: ${URL_PARAMS.join(', ')}; pool and ` +
          'timeouts go in the postgres: section)',
      };
    }
    if (seen.has(key)) return { problem: `has the parameter "${key}" more than once` };
    seen.add(key);
    const value = rawValue;
    switch (key as (typeof URL_PARAMS)[number]) {
      case 'host': {
        if (parts.host !== undefined) return { problem: 'names the host twice (in the authority and in ?host=)' };
        if (value === '') return { problem: 'has an empty ?host=' };
        const list = value.split(',');
        if (list.some((h) => h === '')) return { problem: 'has an empty host in ?host=' };
        if (list.length > MAX_PG_HOSTS) return { problem: `names more than ${MAX_PG_HOSTS} hosts` };
        parts.host = list[0]!;
        if (list.length > 1) parts.hosts = list.map((host) => ({ host }));
        break;
      }
      case 'port': {
        if (parts.port !== undefined || parts.hosts?.some((h) => h.port !== undefined))
          return { problem: 'names the port twice (after the host and in ?port=)' };
        const ports = value.split(',').map(checkPort);
        if (ports.some((n) => n === undefined)) return { problem: 'has a ?port= that is not a port number 1-65535' };
        parts.port = ports[0]!;
        if (ports.length > 1) portList = ports as number[];
        break;
      }
      case 'target_session_attrs': {
        const err = checkTargetSessionAttrs(value);
        if (err) return { problem: `?target_session_attrs= ${err}` };
        parts.targetSessionAttrs = value as PgTargetSessionAttrs;
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
  if (portList !== undefined) {
    // libpq: one port for every host, or exactly one per host.
    const hosts = parts.hosts ?? [{ host: parts.host ?? 'localhost' }];
    if (portList.length !== hosts.length)
      return {
        problem: `has ${portList.length} ports in ?port= for ${hosts.length} hosts: give one port, or one per host`,
      };
    parts.hosts = hosts.map((h, i) => ({ host: h.host, port: portList[i]! }));
    delete parts.port;
  }
  for (const h of parts.hosts ?? [])
    if (h.port !== undefined && (h.port < 1 || h.port > 65535)) return { problem: 'has a port outside 1-65535' };
  if (parts.port !== undefined && (parts.port < 1 || parts.port > 65535))
    return { problem: 'has a port outside 1-65535' };
  return parts;
}

/** The failover keys of the postgres: section (`hosts`, `target_session_attrs`). */
export function failoverOptions(raw: { hosts?: unknown; target_session_attrs?: unknown }): {
  hosts: readonly PgHost[] | null;
  targetSessionAttrs: PgTargetSessionAttrs | null;
  problems: { key: string; message: string }[];
} {
  const problems: { key: string; message: string }[] = [];
  let hosts: PgHost[] | null = null;
  if (raw.hosts !== undefined && raw.hosts !== null) {
    const list = typeof raw.hosts === 'string' ? raw.hosts.split(',').map((h) => h.trim()) : raw.hosts;
    if (!Array.isArray(list) || list.length === 0 || !list.every((h) => typeof h === 'string')) {
      problems.push({
        key: 'postgres.hosts',
        message: 'must be a list of HOST:PORT strings (e.g. [db1:5432, db2:5432])',
      });
    } else if (list.length > MAX_PG_HOSTS) {
      problems.push({ key: 'postgres.hosts', message: `must name at most ${MAX_PG_HOSTS} hosts` });
    } else {
      hosts = [];
      list.forEach((h: string, i) => {
        const r = parsePgHost(h);
        if ('problem' in r)
          problems.push({
            key: 'postgres.hosts',
            message: `entry ${i + 1} is not HOST, HOST:PORT or [IPv6]:PORT (port 1-65535)`,
          });
        else hosts!.push(r);
      });
    }
  }
  let target: PgTargetSessionAttrs | null = null;
  const t = raw.target_session_attrs;
  if (t !== undefined && t !== null) {
    const err = typeof t === 'string' ? checkTargetSessionAttrs(t) : 'must be a string';
    if (err) problems.push({ key: 'postgres.target_session_attrs', message: err });
    else target = t as PgTargetSessionAttrs;
  }
  return { hosts, targetSessionAttrs: target, problems };
}

/** Failover settings given both in the URL and in the postgres: section: each belongs in one place. */
export function failoverConflicts(
  o: { hosts: readonly PgHost[] | null; targetSessionAttrs: PgTargetSessionAttrs | null },
  url: PostgresUrlParts,
): { key: string; message: string }[] {
  const out: { key: string; message: string }[] = [];
  if (o.hosts !== null && url.host !== undefined)
    out.push({
      key: 'postgres.hosts',
      message: 'is set, but the database URL names a host too: name the hosts in one place',
    });
  if (o.targetSessionAttrs !== null && url.targetSessionAttrs !== undefined)
    out.push({
      key: 'postgres.target_session_attrs',
      message: 'is set, but the database URL has ?target_session_attrs= too: set it in one place',
    });
  return out;
}
