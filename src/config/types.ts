/**
 * Configuration types. `RawConfig` is what a YAML file or the environment may hold (anything);
 * `Config` is the validated, normalised result. After loading, no code sees raw config. Each
 * key's default, range and meaning is its row in src/config/schema.ts.
 */
import type { BucketState } from '../core/policy.js';
import type { PgHost, PgSslMode, PgTargetSessionAttrs } from './postgres.js';

export type { PgSslMode };

/** Config file read when neither --config nor SHARDER_CONFIG names one. */
export const DEFAULT_CONFIG_FILE = 'sharder.yml';
/** Shortest cookie.secret accepted, in bytes: an HMAC key must not be guessable. */
export const MIN_COOKIE_SECRET_BYTES = 32;
/** Most worker processes accepted. */
export const MAX_WORKERS = 64;
/** Shortest /metrics token accepted. */
export const MIN_METRICS_TOKEN_LENGTH = 16;
/** Shortest admin token accepted: anything shorter can be guessed. */
export const MIN_ADMIN_TOKEN_LENGTH = 16;
/** Audit actor name of the single token from admin.token / admin.token_file / SHARDER_ADMIN_TOKEN. */
export const DEFAULT_ADMIN_TOKEN_NAME = 'admin';

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
    /**
     * PostgreSQL: a local SQLite copy of the assignment table, to start from while the database
     * is away (store/snapshot.ts); null: none.
     */
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
