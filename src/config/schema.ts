/**
 * The configuration schema: one row per key of sharder.yml. Everything else that lists keys is
 * derived from these rows: the keys `unknownKeys` accepts at each level, the defaults and ranges
 * the checks apply, the SHARDER_* variables (load.ts), the `serve` flags, which changes a
 * SIGHUP cannot apply (`restartOnlyChanges`), and docs/configuration.md (reference.ts).
 *
 * Adding a key: add its row here (in the order its section lists its keys: that order is the
 * one "unknown key (known: …)" messages and the reference page show), then the code that uses
 * it: its field in `Config` (types.ts), the line that checks it, and what reads it.
 *
 * Paths: `a.b` for nested keys, `*` for any key of a mapping (a kind's name), `[]` for every
 * entry of a list. Rows without `*` or `[]` can be set from the environment.
 */
import { adminSection, controlListen, hubApi } from './check-ops.js';
import { cookieSecret } from './check-cookie.js';
import { bucket, defaultKind, kinds, upstream } from './check-kinds.js';
import { metricsSection, statusSection } from './check-observability.js';
import { cookieName, headerName, kindHeader, loginUrl, shardRedirect, trustedProxies, workers } from './check-serve.js';
import { database, mariadbOptions, postgresOptions, snapshotRules } from './check-store.js';
import { PG_SSL_MODES, PG_TARGET_SESSION_ATTRS, failoverOptions } from './postgres.js';
import { type KeyLimits, type KeyTable, NAME_PATTERN, TOKEN_PATTERN } from './rules.js';
import { type Config, LOG_FORMATS, LOG_LEVELS, MAX_WORKERS, MODES } from './types.js';

/** What a key holds; also how its SHARDER_* variable is read (load.ts `envKind`). */
export type KeyType =
  | 'string'
  | 'integer'
  | 'integer or auto'
  | 'number'
  | 'boolean'
  | 'enum'
  | 'address'
  | 'url'
  | 'path'
  | 'header name'
  | 'secret'
  | 'secret file'
  | 'list'
  | 'mapping'
  | 'list of mappings';

export interface KeyRow extends KeyLimits {
  /** Dotted path; `*` any key of a mapping, `[]` every list entry. */
  readonly path: string;
  readonly type: KeyType;
  /** The value used when the key is absent (before checking); null: none. */
  readonly default: unknown;
  /** What the reference page says instead of `default`, when the default is worked out. */
  readonly defaultDoc?: string;
  /** Values must match (names, header names). */
  readonly pattern?: RegExp;
  /** The SHARDER_* variable when it is not the one load.ts `envName` derives; false: none. */
  readonly env?: string | false;
  /** A `sharder serve` flag that sets the key; `order` is its place in `serve --help`. */
  readonly flag?: {
    readonly name: string;
    readonly metavar: string;
    readonly help: string;
    readonly short?: string;
    readonly order: number;
  };
  /** Whether SIGHUP applies a change, or a restart is needed (and a reload says so). */
  readonly reload: 'live' | 'restart';
  /** A restart key whose checked value is part of another key's (postgres.* is part of `database`). */
  readonly restartVia?: string;
  /** Never logged or echoed in a message. */
  readonly secret?: true;
  /** The check that holds the rules a row cannot express (URL shape, rules between keys). */
  readonly check?: (...args: never[]) => unknown;
  /** One line for the reference page. */
  readonly doc: string;
}

const ms = (min: number, max: number): readonly [number, number] => [min, max];

export const SCHEMA: readonly KeyRow[] = [
  {
    path: 'listen',
    type: 'address',
    default: '127.0.0.1:8888',
    reload: 'restart',
    flag: { name: 'listen', metavar: 'ADDR', help: 'main listener, HOST:PORT or a port', order: 1 },
    doc: 'main listener (`/auth`, `/shard`, health): `HOST:PORT`, `[IPv6]:PORT`, or a port (on 127.0.0.1)',
  },
  {
    path: 'workers',
    type: 'integer or auto',
    default: 1,
    range: [1, MAX_WORKERS],
    reload: 'restart',
    check: workers,
    doc: 'server processes sharing the listeners (node:cluster); `auto`: one per CPU',
  },
  {
    path: 'mode',
    type: 'enum',
    values: MODES,
    default: 'auth',
    reload: 'restart',
    flag: {
      name: 'mode',
      metavar: 'MODE',
      help: "auth (answer nginx's auth_request) or proxy (forward to the hubs)",
      short: 'm',
      order: 6,
    },
    doc: "`auth`: answer nginx's `auth_request`; `proxy`: forward requests and websockets to the hubs",
  },
  {
    path: 'proxy.login_url',
    type: 'url',
    default: null,
    reload: 'live',
    check: loginUrl,
    doc:
      'proxy mode: where `GET` requests without identity are redirected (an http(s) URL or a path; `{next}` ' +
      'becomes the requested URL); none: `401`',
  },
  {
    path: 'proxy.connect_timeout_ms',
    type: 'integer',
    default: 5_000,
    range: ms(100, 600_000),
    reload: 'live',
    doc: 'proxy mode: longest wait for a TCP connection to a hub before `504`, in ms',
  },
  {
    path: 'proxy.idle_timeout_ms',
    type: 'integer',
    default: 300_000,
    range: ms(0, 86_400_000),
    reload: 'live',
    doc: 'proxy mode: longest silence of an HTTP exchange with a hub before `504` or a cut, in ms; `0`: none',
  },
  {
    path: 'proxy.websocket_idle_timeout_ms',
    type: 'integer',
    default: 3_600_000,
    range: ms(0, 604_800_000),
    reload: 'live',
    doc: 'proxy mode: a websocket with no traffic either way for this long is closed, in ms; `0`: never',
  },
  {
    path: 'proxy.keep_alive_ms',
    type: 'integer',
    default: 4_000,
    range: ms(0, 600_000),
    reload: 'live',
    doc:
      "proxy mode: how long an idle connection to a hub is kept for reuse, in ms (below the hubs' own keep-alive " +
      'timeouts); `0`: a new connection per request',
  },
  {
    path: 'proxy.max_free_sockets',
    type: 'integer',
    default: 256,
    range: [1, 65_536],
    reload: 'live',
    doc: 'proxy mode: idle connections kept per hub for reuse',
  },
  {
    path: 'proxy.forward_identity',
    type: 'boolean',
    default: true,
    reload: 'live',
    doc: "proxy mode: pass the identity header on to the hubs (JupyterHub's REMOTE_USER authenticators read it)",
  },
  {
    path: 'control_listen',
    type: 'address',
    default: '127.0.0.1:8889',
    reload: 'restart',
    check: controlListen,
    flag: {
      name: 'control-listen',
      metavar: 'ADDR',
      help: 'admin API, /metrics and /status listener, or off',
      order: 2,
    },
    doc: 'control listener (admin API under `/api/`, `/metrics`, `/status`), same forms as `listen`; `off` disables it',
  },
  {
    path: 'admin.token',
    type: 'secret',
    default: null,
    secret: true,
    reload: 'live',
    check: adminSection,
    doc: 'admin API token (at least 16 printable characters), audit name `admin`',
  },
  {
    path: 'admin.token_file',
    type: 'secret file',
    default: null,
    secret: true,
    reload: 'live',
    check: adminSection,
    doc: 'file holding that token instead (trailing newline ignored); read again on every reload',
  },
  {
    path: 'admin.tokens',
    type: 'list of mappings',
    default: [],
    defaultDoc: '`[]`',
    reload: 'live',
    check: adminSection,
    doc: 'more tokens, each `{ name, token }` or `{ name, token_file }`; the name is the audit actor `api:<name>`',
  },
  {
    path: 'admin.tokens[].name',
    type: 'string',
    default: null,
    defaultDoc: '(required)',
    pattern: NAME_PATTERN,
    reload: 'live',
    doc: 'who uses the token, as the audit log names them (1 to 63 letters, digits, `.`, `_` or `-`)',
  },
  {
    path: 'admin.tokens[].token',
    type: 'secret',
    default: null,
    secret: true,
    reload: 'live',
    doc: 'the token (give it or `token_file`)',
  },
  {
    path: 'admin.tokens[].token_file',
    type: 'secret file',
    default: null,
    secret: true,
    reload: 'live',
    doc: 'file holding the token',
  },
  {
    path: 'database',
    type: 'url',
    default: 'sqlite:./data/sharder.db',
    secret: true,
    reload: 'restart',
    check: database,
    flag: {
      name: 'database',
      metavar: 'URL',
      help: 'sqlite:PATH, postgres://USER@HOST:PORT/DB or mysql://USER@HOST:PORT/DB (no password here: ps shows it)',
      order: 4,
    },
    doc: '`sqlite:PATH` (created on first start, relative to the working directory) or `postgres://USER@HOST:PORT/DB` (also `postgresql://`; `postgres:` alone takes every part from the `PG*` variables) or `mysql://USER@HOST:PORT/DB` (MariaDB or MySQL; also `mariadb://`)',
  },
  {
    path: 'identity.header',
    type: 'header name',
    default: 'REMOTE_USER',
    pattern: TOKEN_PATTERN,
    reload: 'live',
    check: headerName,
    doc: 'request header carrying the user name, as the original sharder read it',
  },
  {
    path: 'identity.trusted_proxies',
    type: 'list',
    default: ['127.0.0.0/8', '::1/128'],
    reload: 'live',
    check: trustedProxies,
    doc: 'addresses or CIDR ranges allowed to set the identity (and kind) header',
  },
  {
    path: 'identity.max_length',
    type: 'integer',
    default: 256,
    range: [1, 4096],
    reload: 'live',
    doc: 'longest accepted name, in UTF-8 bytes; longer names are refused with `400`',
  },
  {
    path: 'cookie.name',
    type: 'header name',
    default: 'hub',
    pattern: TOKEN_PATTERN,
    reload: 'live',
    check: cookieName,
    doc: 'name of the cookie carrying the bucket, as the original sharder set it',
  },
  {
    path: 'cookie.secure',
    type: 'boolean',
    default: false,
    reload: 'live',
    doc: 'add `Secure` to the cookie (set it when users reach you over HTTPS)',
  },
  {
    path: 'cookie.secret',
    type: 'secret',
    default: null,
    secret: true,
    reload: 'live',
    check: cookieSecret,
    doc:
      'sign the cookie with HMAC-SHA256 (at least 32 bytes, e.g. `openssl rand -hex 32`); none: the cookie names ' +
      'the bucket unsigned',
  },
  {
    path: 'cookie.secret_file',
    type: 'secret file',
    default: null,
    secret: true,
    reload: 'live',
    check: cookieSecret,
    doc: 'file holding that secret instead (trailing newline ignored); give one of the two',
  },
  {
    path: 'shard.redirect',
    type: 'url',
    default: null,
    reload: 'live',
    check: shardRedirect,
    doc: 'URL template `/shard` redirects to, e.g. `https://{bucket}/jupyter/hub`; none: `/shard` answers JSON',
  },
  {
    path: 'default_kind',
    type: 'string',
    default: 'hub',
    reload: 'live',
    check: defaultKind,
    doc: 'kind used when the request names none; must be under `kinds`',
  },
  {
    path: 'kind_header',
    type: 'header name',
    default: null,
    pattern: TOKEN_PATTERN,
    reload: 'live',
    check: kindHeader,
    doc:
      'request header that selects another kind (e.g. `X-Shard-Kind`), taken from trusted proxies only; none (or ' +
      '`off`): every request is of `default_kind`',
  },
  {
    path: 'cache.max_entries',
    type: 'integer',
    default: 1_000_000,
    range: [0, 100_000_000],
    reload: 'restart',
    doc: 'assignments kept in memory per kind and process (`0` disables the cache); set it above your number of users',
  },
  {
    path: 'store.poll_ms',
    type: 'integer',
    default: 500,
    range: ms(50, 60_000),
    reload: 'restart',
    doc: "how often other processes' changes (moves, deletes) are looked for, in ms",
  },
  {
    path: 'store.timeout_ms',
    type: 'integer',
    default: 5_000,
    range: ms(100, 600_000),
    reload: 'live',
    doc: 'how long a store operation may take before the request is answered `503`, in ms',
  },
  {
    path: 'store.busy_timeout_ms',
    type: 'integer',
    default: 5_000,
    range: ms(0, 600_000),
    reload: 'restart',
    restartVia: 'database',
    doc: "SQLite: how long to wait for another process's write lock, in ms, then `503`",
  },
  {
    path: 'store.snapshot_file',
    type: 'path',
    default: null,
    reload: 'restart',
    check: snapshotRules,
    doc:
      'PostgreSQL: a local SQLite copy of the assignment table, to start from while the database is unreachable ' +
      '(one worker only)',
  },
  {
    path: 'log.level',
    type: 'enum',
    values: LOG_LEVELS,
    default: 'info',
    reload: 'restart',
    flag: { name: 'log-level', metavar: 'LEVEL', help: LOG_LEVELS.join(', '), order: 5 },
    doc: 'log level',
  },
  {
    path: 'log.format',
    type: 'enum',
    values: LOG_FORMATS,
    valuesHint: '(auto: pretty on a terminal, journal under systemd, JSON otherwise)',
    default: 'auto',
    reload: 'restart',
    doc:
      '`json` lines, `journal` (the same behind syslog priorities), `pretty`, or `auto`: pretty on a terminal, ' +
      "journal when standard output is systemd's journal, else JSON",
  },
  {
    path: 'metrics.enabled',
    type: 'boolean',
    default: true,
    reload: 'restart',
    check: metricsSection,
    doc: '`/metrics` on the control listener; off also stops counting and timing requests (`/metrics` answers `404`)',
  },
  {
    path: 'metrics.token',
    type: 'secret',
    default: null,
    secret: true,
    reload: 'live',
    check: metricsSection,
    doc: 'bearer token `/metrics` requires (at least 16 printable characters); none: open',
  },
  {
    path: 'metrics.token_file',
    type: 'secret file',
    default: null,
    secret: true,
    reload: 'live',
    check: metricsSection,
    doc: 'file holding that token instead (trailing newline ignored)',
  },
  {
    path: 'metrics.gc',
    type: 'boolean',
    default: false,
    reload: 'restart',
    doc: 'time every garbage collection (`nodejs_gc_duration_seconds`); costs about 11% of `/auth` throughput',
  },
  {
    path: 'metrics.listen',
    type: 'address',
    default: 'off',
    reload: 'restart',
    check: metricsSection,
    flag: {
      name: 'metrics-listen',
      metavar: 'ADDR',
      help: '/metrics alone on a listener of its own, or off',
      order: 3,
    },
    doc:
      "also serve `/metrics`, and nothing else, on a listener of its own (as configurable-http-proxy's " +
      '`--metrics-port`); `off`: none',
  },
  {
    path: 'status.loopback_without_token',
    type: 'boolean',
    default: true,
    reload: 'live',
    check: statusSection,
    doc: '`/status` answers loopback peers without a token; others always need an admin token',
  },
  {
    path: 'status.refresh_seconds',
    type: 'integer',
    default: 30,
    range: [0, 3600],
    reload: 'live',
    check: statusSection,
    doc: 'how often the status page reloads itself, in seconds; `0`: never',
  },
  {
    path: 'postgres.pool_max',
    type: 'integer',
    default: 10,
    range: [1, 1000],
    reload: 'restart',
    restartVia: 'database',
    check: postgresOptions,
    doc: 'PostgreSQL connections per process in the pool (each also keeps one `LISTEN` connection)',
  },
  {
    path: 'postgres.idle_timeout_ms',
    type: 'integer',
    default: 30_000,
    range: ms(1000, 3_600_000),
    reload: 'restart',
    restartVia: 'database',
    doc: 'an idle pooled connection is closed after this long, in ms',
  },
  {
    path: 'postgres.connection_timeout_ms',
    type: 'integer',
    default: 3_000,
    range: ms(100, 600_000),
    reload: 'restart',
    restartVia: 'database',
    doc: 'longest wait to open a connection or get one from the pool, in ms',
  },
  {
    path: 'postgres.statement_timeout_ms',
    type: 'integer',
    default: 5_000,
    range: ms(100, 600_000),
    reload: 'restart',
    restartVia: 'database',
    doc: 'server-side `statement_timeout` (and `idle_in_transaction_session_timeout`) of every connection, in ms',
  },
  {
    path: 'postgres.password_file',
    type: 'path',
    default: null,
    secret: true,
    reload: 'restart',
    restartVia: 'database',
    doc: 'file whose first line is the database password (instead of a password in the URL); read when the store opens',
  },
  {
    path: 'postgres.ssl.mode',
    type: 'enum',
    values: PG_SSL_MODES,
    default: null,
    defaultDoc: "the URL's `?sslmode=`, else `PGSSLMODE`, else `disable`",
    reload: 'restart',
    restartVia: 'database',
    doc:
      '`disable`, `require` (encrypted, certificate not checked), `verify-ca` (chain checked), `verify-full` ' +
      '(chain and host name checked)',
  },
  {
    path: 'postgres.ssl.ca_file',
    type: 'path',
    default: null,
    defaultDoc: '`?sslrootcert=`, else `PGSSLROOTCERT`, else the system CAs',
    reload: 'restart',
    restartVia: 'database',
    doc: "PEM file of the CA that signed the server's certificate",
  },
  {
    path: 'postgres.hosts',
    type: 'list',
    default: null,
    defaultDoc: "the URL's host(s)",
    reload: 'restart',
    restartVia: 'database',
    check: failoverOptions,
    doc: 'hosts to try in order (failover), `HOST:PORT` each; the URL then names no host',
  },
  {
    path: 'postgres.target_session_attrs',
    type: 'enum',
    values: PG_TARGET_SESSION_ATTRS,
    default: null,
    defaultDoc: "the URL's `?target_session_attrs=`, else `read-write` with several hosts, `any` with one",
    reload: 'restart',
    restartVia: 'database',
    check: failoverOptions,
    doc: '`read-write` (a host where `transaction_read_only` is off), `primary` (not in recovery) or `any`',
  },
  {
    path: 'mariadb.pool_max',
    type: 'integer',
    default: 10,
    range: [1, 1000],
    reload: 'restart',
    restartVia: 'database',
    check: mariadbOptions,
    doc: 'MariaDB/MySQL connections per process in the pool',
  },
  {
    path: 'mariadb.idle_timeout_ms',
    type: 'integer',
    default: 30_000,
    range: ms(1000, 3_600_000),
    reload: 'restart',
    restartVia: 'database',
    doc: 'an idle pooled connection is closed after this long, in ms',
  },
  {
    path: 'mariadb.connection_timeout_ms',
    type: 'integer',
    default: 3_000,
    range: ms(100, 600_000),
    reload: 'restart',
    restartVia: 'database',
    doc: 'longest wait to open a connection or get one from the pool, in ms',
  },
  {
    path: 'mariadb.statement_timeout_ms',
    type: 'integer',
    default: 5_000,
    range: ms(100, 600_000),
    reload: 'restart',
    restartVia: 'database',
    doc:
      'longest wait for one query (the driver timeout, plus a margin) and for a row lock ' +
      '(`innodb_lock_wait_timeout`, in whole seconds), in ms',
  },
  {
    path: 'mariadb.password_file',
    type: 'path',
    default: null,
    secret: true,
    reload: 'restart',
    restartVia: 'database',
    doc:
      'file whose first line is the database password (instead of a password in the URL, or `MYSQL_PWD`); read ' +
      'when the store opens',
  },
  {
    path: 'mariadb.ssl.mode',
    type: 'enum',
    values: PG_SSL_MODES,
    default: null,
    defaultDoc: "the URL's `?sslmode=`, else `disable`",
    reload: 'restart',
    restartVia: 'database',
    doc:
      '`disable`, `require` (encrypted, certificate not checked), `verify-ca` (chain checked), `verify-full` ' +
      '(chain and host name checked)',
  },
  {
    path: 'mariadb.ssl.ca_file',
    type: 'path',
    default: null,
    defaultDoc: '`?sslrootcert=`, else the system CAs',
    reload: 'restart',
    restartVia: 'database',
    doc: "PEM file of the CA that signed the server's certificate",
  },
  {
    path: 'kinds',
    type: 'mapping',
    default: null,
    defaultDoc: '(required)',
    reload: 'live',
    check: kinds,
    doc: "each kind's buckets, in order: `kinds: { hub: { buckets: [ { name: hub-0 } ] } }`",
  },
  {
    path: 'kinds.*.buckets',
    type: 'list of mappings',
    default: null,
    defaultDoc: '(required)',
    reload: 'live',
    doc: 'the buckets of a kind, in order: ties in the policy go to the bucket listed first',
  },
  {
    path: 'kinds.*.buckets[].name',
    type: 'string',
    default: null,
    defaultDoc: '(required)',
    pattern: NAME_PATTERN,
    reload: 'live',
    check: bucket,
    doc:
      '1 to 63 letters, digits, `.`, `_`, `-`, unique within the kind; the cookie value and the `X-Shard-Bucket` ' +
      'header',
  },
  {
    path: 'kinds.*.buckets[].upstream',
    type: 'url',
    default: null,
    reload: 'live',
    check: upstream,
    doc: "base URL of the bucket's hub (`http://` or `https://`), sent as `X-Shard-Upstream`; for nginx, `scheme://host:port` without a path",
  },
  {
    path: 'kinds.*.buckets[].weight',
    type: 'number',
    default: 1,
    range: [0, 1_000_000],
    reload: 'live',
    check: bucket,
    doc: 'relative share of new objects (greater than 0)',
  },
  {
    path: 'kinds.*.buckets[].state',
    type: 'enum',
    values: ['active', 'draining'],
    default: 'active',
    reload: 'live',
    doc: '`active` receives new objects; `draining` keeps its objects and receives none',
  },
  {
    path: 'kinds.*.buckets[].hub_api',
    type: 'mapping',
    default: null,
    reload: 'live',
    check: hubApi,
    doc: "the bucket's JupyterHub REST API, asked before users are moved off the bucket",
  },
  {
    path: 'kinds.*.buckets[].hub_api.url',
    type: 'url',
    default: null,
    defaultDoc: '(required)',
    reload: 'live',
    doc: "the hub's URL with its base_url, if any: `{url}/hub/api/users/{name}`",
  },
  {
    path: 'kinds.*.buckets[].hub_api.token',
    type: 'secret',
    default: null,
    secret: true,
    reload: 'live',
    doc:
      'a JupyterHub API token with the `read:servers` and `servers` scopes (give one of token, token_file, ' +
      'token_env)',
  },
  {
    path: 'kinds.*.buckets[].hub_api.token_file',
    type: 'secret file',
    default: null,
    secret: true,
    reload: 'live',
    doc: 'file holding that token',
  },
  {
    path: 'kinds.*.buckets[].hub_api.token_env',
    type: 'string',
    default: null,
    reload: 'live',
    doc: 'name of the environment variable holding that token',
  },
];

const BY_PATH: ReadonlyMap<string, KeyRow> = new Map(SCHEMA.map((r) => [r.path, r]));

/** The row of `path`; a path with no row is a mistake in the code that asks. */
export function keyRow(path: string): KeyRow {
  const row = BY_PATH.get(path);
  if (row === undefined) throw new Error(`config schema: no row for ${path}`);
  return row;
}

/** The parts of a path: `kinds.*.buckets[].name` → kinds, *, buckets[], name. */
const parts = (path: string): string[] => (path === '' ? [] : path.split('.'));

/**
 * The keys a mapping at `at` may hold, in schema order (`''` is the top level); a mapping whose
 * keys are names (`kinds`) has none listed.
 */
export function knownKeys(at: string): readonly string[] {
  const depth = parts(at).length;
  const out: string[] = [];
  for (const r of SCHEMA) {
    const p = parts(r.path);
    if (p.length <= depth || p.slice(0, depth).join('.') !== at) continue;
    const key = p[depth]!.replace(/\[\]$/, '');
    if (key !== '*' && !out.includes(key)) out.push(key);
  }
  return out;
}

export const KEY_TABLE: KeyTable = { row: keyRow, known: knownKeys };

/** Rows that `sharder serve` has a flag for, in `serve --help` order. */
export const FLAG_ROWS: readonly (KeyRow & { readonly flag: NonNullable<KeyRow['flag']> })[] = SCHEMA.filter(
  (r): r is KeyRow & { flag: NonNullable<KeyRow['flag']> } => r.flag !== undefined,
).sort((a, b) => a.flag.order - b.flag.order);

/** A validated value of a restart key: the path's parts in camelCase (`control_listen` → controlListen). */
function checkedValue(config: Config, path: string): unknown {
  let v: unknown = config;
  for (const part of parts(path))
    v = (v as Record<string, unknown> | null)?.[part.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())];
  return v;
}

/** The keys whose checked value is where `restartOnlyChanges` looks (rows with `restartVia` are inside another's). */
export const RESTART_KEYS: readonly string[] = SCHEMA.filter(
  (r) => r.reload === 'restart' && r.restartVia === undefined,
).map((r) => r.path);

/**
 * The keys that changed from `prev` to `next` but take effect only after a restart (listeners,
 * database, mode, workers…): a reload applies the rest and says so for these.
 */
export function restartOnlyChanges(prev: Config, next: Config): string[] {
  return RESTART_KEYS.filter(
    (path) => JSON.stringify(checkedValue(prev, path)) !== JSON.stringify(checkedValue(next, path)),
  );
}
