/**
 * Configuration types. `RawConfig` is what a YAML file or the environment may hold (anything);
 * `Config` is the validated, normalised result. After loading, no code sees raw config.
 */
import type { BucketState } from '../core/policy.js';
import type { PgHost, PgTargetSessionAttrs } from './postgres.js';

/** Config file read when neither --config nor SHARDER_CONFIG names one. */
export const DEFAULT_CONFIG_FILE = 'sharder.yml';
/** Main listener (auth_request target, /shard, health). */
export const DEFAULT_LISTEN = '127.0.0.1:8888';
/** Embedded SQLite default, relative to the working directory. */
export const DEFAULT_DATABASE = 'sqlite:./data/sharder.db';
/** Request header carrying the identity, as the original sharder read it. */
export const DEFAULT_IDENTITY_HEADER = 'REMOTE_USER';
/** Addresses the identity header is trusted from: loopback only. */
export const DEFAULT_TRUSTED_PROXIES: readonly string[] = ['127.0.0.0/8', '::1/128'];
/** Longest identity accepted, in UTF-8 bytes; longer names are refused with 400. */
export const DEFAULT_IDENTITY_MAX_LENGTH = 256;
/** Cookie name, as the original sharder set it. */
export const DEFAULT_COOKIE_NAME = 'hub';
/** Shortest cookie.secret accepted, in bytes: an HMAC key must not be guessable. */
export const MIN_COOKIE_SECRET_BYTES = 32;
/** No cookie.secret by default: the cookie names the bucket, unsigned, as the original did. */
export const DEFAULT_COOKIE_SECRET: string | null = null;
/** Kind used when the request names none. */
export const DEFAULT_KIND = 'hub';
/**
 * Request header that selects another kind: none by default, so that routing depends on the
 * identity alone. When set (e.g. X-Shard-Kind), only a trusted proxy may send it, as the identity.
 */
export const DEFAULT_KIND_HEADER: string | null = null;
/** Most assignments kept in memory per process. */
export const DEFAULT_CACHE_MAX_ENTRIES = 1_000_000;
/** How often other processes' changes (moves, deletes) are looked for, in milliseconds. */
export const DEFAULT_STORE_POLL_MS = 500;
/** How long a store operation may take before the request is answered 503, in milliseconds. */
export const DEFAULT_STORE_TIMEOUT_MS = 5_000;
/** SQLite busy timeout: how long to wait for another process's write lock, in milliseconds. */
export const DEFAULT_SQLITE_BUSY_TIMEOUT_MS = 5_000;
/** Server processes sharing the listener (node:cluster); 1 runs no cluster. */
export const DEFAULT_WORKERS = 1;
/** Most worker processes accepted. */
export const MAX_WORKERS = 64;
/** Log level. */
export const DEFAULT_LOG_LEVEL = 'info';
/** Log format: `auto` is human-readable on a terminal, JSON lines with syslog priority prefixes when standard output is systemd's journal, plain JSON lines otherwise. */
export const DEFAULT_LOG_FORMAT: LogFormat = 'auto';
/** /metrics on the control listener; off also stops counting and timing requests. */
export const DEFAULT_METRICS_ENABLED = true;
/** prom-client's GC duration histogram (nodejs_gc_duration_seconds): off, it costs ~11% of /auth throughput. */
export const DEFAULT_METRICS_GC = false;
/** A listener of its own for /metrics (like configurable-http-proxy's --metrics-port); off: /metrics is on the control listener only. */
export const DEFAULT_METRICS_LISTEN = 'off';
/** Shortest /metrics token accepted. */
export const MIN_METRICS_TOKEN_LENGTH = 16;
/** /status answers loopback peers without a token (others need an admin token). */
export const DEFAULT_STATUS_LOOPBACK_WITHOUT_TOKEN = true;
/** How often the status page reloads itself, in seconds (0: never). */
export const DEFAULT_STATUS_REFRESH_SECONDS = 30;
/** What the main listener does: `auth` answers nginx's auth_request; `proxy` forwards to the hubs. */
export const DEFAULT_MODE: Mode = 'auth';
/** Proxy mode: where requests without identity are redirected (null: answer 401). */
export const DEFAULT_PROXY_LOGIN_URL: string | null = null;
/** Proxy mode: longest wait for a TCP connection to a hub before 504, in milliseconds. */
export const DEFAULT_PROXY_CONNECT_TIMEOUT_MS = 5_000;
/** Proxy mode: longest silence on an HTTP exchange with a hub before 504 (0: none), in milliseconds. */
export const DEFAULT_PROXY_IDLE_TIMEOUT_MS = 300_000;
/** Proxy mode: longest silence on a websocket before it is closed (0: none), in milliseconds. */
export const DEFAULT_PROXY_WEBSOCKET_IDLE_TIMEOUT_MS = 3_600_000;
/**
 * Proxy mode: how long an idle connection to a hub is kept for reuse (0: no reuse), in
 * milliseconds. Below Node's and tornado's server keep-alive timeouts, so the sharder closes
 * idle connections before the hub does (a hub closing first races with a new request).
 */
export const DEFAULT_PROXY_KEEP_ALIVE_MS = 4_000;
/** Proxy mode: idle connections kept per hub for reuse. */
export const DEFAULT_PROXY_MAX_FREE_SOCKETS = 256;
/** Proxy mode: pass the identity header on to the hubs (JupyterHub's REMOTE_USER authenticators read it). */
export const DEFAULT_PROXY_FORWARD_IDENTITY = true;
/** Control listener (admin REST API under /api/); `off` disables it. */
export const DEFAULT_CONTROL_LISTEN = '127.0.0.1:8889';
/** Shortest admin token accepted: anything shorter can be guessed. */
export const MIN_ADMIN_TOKEN_LENGTH = 16;
/** Audit actor name of the single token from admin.token / admin.token_file / SHARDER_ADMIN_TOKEN. */
export const DEFAULT_ADMIN_TOKEN_NAME = 'admin';
/** PostgreSQL: most pool connections per process (plus one LISTEN connection per watcher). */
export const DEFAULT_PG_POOL_MAX = 10;
/** PostgreSQL: an idle pool connection is closed after this many milliseconds. */
export const DEFAULT_PG_IDLE_TIMEOUT_MS = 30_000;
/** PostgreSQL: how long opening a connection (or waiting for a free one) may take, in ms. */
export const DEFAULT_PG_CONNECTION_TIMEOUT_MS = 3_000;
/** PostgreSQL: server-side statement_timeout of every query (and idle-in-transaction limit), ms. */
export const DEFAULT_PG_STATEMENT_TIMEOUT_MS = 5_000;
/** PostgreSQL TLS modes, as libpq names them ("prefer"/"allow" need a fallback pg cannot do). */
export const PG_SSL_MODES = ['disable', 'require', 'verify-ca', 'verify-full'] as const;
export type PgSslMode = (typeof PG_SSL_MODES)[number];
/** Bucket weight when none is given. */
export const DEFAULT_BUCKET_WEIGHT = 1;
/** Bucket state when none is given. */
export const DEFAULT_BUCKET_STATE: BucketState = 'active';

export const MODES = ['auth', 'proxy'] as const;
export type Mode = (typeof MODES)[number];

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const LOG_FORMATS = ['auto', 'json', 'journal', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export type RawConfig = Record<string, unknown>;

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * A bucket's JupyterHub REST API, asked before moving users off the bucket. `token` is a
 * non-enumerable property, so it never appears in JSON, logs or inspected objects.
 */
export interface HubApiConfig {
  /** Base URL of the hub, with its base_url if any: `{url}/hub/api/users/{name}`. */
  readonly url: string;
  readonly token: string;
}

/** An admin API token, kept only as its SHA-256 digest (compared in constant time). */
export interface AdminToken {
  /** Who the audit log says made a change with this token. */
  readonly name: string;
  readonly hash: Buffer;
}

export interface BucketConfig {
  readonly name: string;
  /** Base URL of the bucket's hub, e.g. http://10.0.0.5:8000; optional. */
  readonly upstream: string | null;
  readonly weight: number;
  readonly state: BucketState;
  /** The bucket's JupyterHub API, when configured (moves then check for running servers). */
  readonly hubApi?: HubApiConfig | undefined;
}

export interface KindConfig {
  readonly name: string;
  /** In config order: ties in the policy go to the bucket listed first. */
  readonly buckets: readonly BucketConfig[];
}

export type DatabaseConfig =
  | { readonly backend: 'sqlite'; readonly path: string; readonly busyTimeoutMs: number }
  | { readonly backend: 'postgres'; readonly url: string; readonly options: PostgresOptions }
  | { readonly backend: 'mariadb'; readonly url: string; readonly options: MariadbOptions };

/** What the `postgres:` and `mariadb:` sections share: pool, timeouts, password file and TLS. */
export interface ServerDatabaseOptions {
  readonly poolMax: number;
  readonly idleTimeoutMs: number;
  readonly connectionTimeoutMs: number;
  readonly statementTimeoutMs: number;
  /** File holding the password (first line); null: URL, else PGPASSWORD or ~/.pgpass (MariaDB: MYSQL_PWD). */
  readonly passwordFile: string | null;
  /** null: from the URL's sslmode/sslrootcert (PostgreSQL also PGSSLMODE/PGSSLROOTCERT), else disable. */
  readonly ssl: { readonly mode: PgSslMode | null; readonly caFile: string | null };
}

/** The `mariadb:` section (MariaDB/MySQL, src/config/mariadb.ts); the password file, else MYSQL_PWD. */
export type MariadbOptions = ServerDatabaseOptions;

/** The `postgres:` section: ServerDatabaseOptions and failover hosts (see src/config/postgres.ts). */
export interface PostgresOptions extends ServerDatabaseOptions {
  /** Hosts to try in order (failover), instead of the URL's; null: the URL's host(s). */
  readonly hosts: readonly PgHost[] | null;
  /** null: the URL's ?target_session_attrs=, else read-write with several hosts, any with one. */
  readonly targetSessionAttrs: PgTargetSessionAttrs | null;
}

export interface ProxyConfig {
  /** Redirect target for requests without identity; `{next}` is replaced by the requested URL. */
  readonly loginUrl: string | null;
  readonly connectTimeoutMs: number;
  /** 0: no timeout. */
  readonly idleTimeoutMs: number;
  /** 0: no timeout. */
  readonly websocketIdleTimeoutMs: number;
  /** 0: a new connection per request. */
  readonly keepAliveMs: number;
  readonly maxFreeSockets: number;
  readonly forwardIdentity: boolean;
}

export interface Config {
  /** The file the config was read from, or null when only defaults and environment applied. */
  readonly file: string | null;
  readonly listen: ListenAddress;
  /** Worker processes serving the listener; "auto" in the file means one per CPU. */
  readonly workers: number;
  readonly mode: Mode;
  readonly proxy: ProxyConfig;
  /** Control listener (admin API); null when disabled. */
  readonly controlListen: ListenAddress | null;
  readonly admin: { readonly tokens: readonly AdminToken[] };
  readonly database: DatabaseConfig;
  readonly identity: {
    readonly header: string;
    readonly trustedProxies: readonly string[];
    readonly maxLength: number;
  };
  /** `secret`: HMAC-SHA256 key that signs the cookie value, or null (unsigned). */
  readonly cookie: { readonly name: string; readonly secure: boolean; readonly secret: string | null };
  readonly shard: { readonly redirect: string | null };
  readonly defaultKind: string;
  /** The kind header (trusted proxies only), or null: every request is of the default kind. */
  readonly kindHeader: string | null;
  readonly cache: { readonly maxEntries: number };
  readonly store: {
    readonly pollMs: number;
    readonly timeoutMs: number;
    /** PostgreSQL: a local SQLite copy of the assignment table, to start from while the database is away (store/snapshot.ts); null: none. */
    readonly snapshotFile: string | null;
  };
  readonly log: { readonly level: LogLevel; readonly format: LogFormat };
  readonly metrics: {
    readonly enabled: boolean;
    /** SHA-256 digest of the bearer token /metrics requires, or null when it is open. */
    readonly tokenHash: Buffer | null;
    /** Whether garbage collections are timed (nodejs_gc_duration_seconds). */
    readonly gc: boolean;
    /** A listener that serves only /metrics; null when off. */
    readonly listen: ListenAddress | null;
  };
  readonly status: { readonly loopbackWithoutToken: boolean; readonly refreshSeconds: number };
  readonly kinds: ReadonlyMap<string, KindConfig>;
}
