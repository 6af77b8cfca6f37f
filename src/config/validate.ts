/**
 * Validation of raw configuration into `Config`. One function per section, every problem
 * collected (never the first only), each naming the source and the key, as oauth2-proxy's
 * pkg/validation does. Throws a ConfigError listing all problems.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { availableParallelism } from 'node:os';
import { ConfigError, type ConfigProblem } from '../errors.js';
import type { BucketState } from '../core/policy.js';
import {
  type BucketConfig, type Config, type DatabaseConfig, type KindConfig, type ListenAddress,
  type LogLevel, type Mode, type ProxyConfig, type RawConfig,
  DEFAULT_BUCKET_STATE, DEFAULT_BUCKET_WEIGHT, DEFAULT_CACHE_MAX_ENTRIES, DEFAULT_COOKIE_NAME, DEFAULT_COOKIE_SECRET,
  DEFAULT_DATABASE, DEFAULT_IDENTITY_HEADER, DEFAULT_IDENTITY_MAX_LENGTH, DEFAULT_KIND,
  DEFAULT_KIND_HEADER, DEFAULT_LISTEN, DEFAULT_LOG_LEVEL, DEFAULT_SQLITE_BUSY_TIMEOUT_MS,
  DEFAULT_STORE_POLL_MS, DEFAULT_STORE_TIMEOUT_MS, DEFAULT_TRUSTED_PROXIES, DEFAULT_WORKERS, LOG_LEVELS, MAX_WORKERS,
  DEFAULT_MODE, DEFAULT_PROXY_CONNECT_TIMEOUT_MS, DEFAULT_PROXY_FORWARD_IDENTITY, DEFAULT_PROXY_IDLE_TIMEOUT_MS,
  DEFAULT_PROXY_KEEP_ALIVE_MS, DEFAULT_PROXY_LOGIN_URL, DEFAULT_PROXY_MAX_FREE_SOCKETS,
  DEFAULT_PROXY_WEBSOCKET_IDLE_TIMEOUT_MS, MODES,
  DEFAULT_PG_CONNECTION_TIMEOUT_MS, DEFAULT_PG_IDLE_TIMEOUT_MS, DEFAULT_PG_POOL_MAX,
  DEFAULT_PG_STATEMENT_TIMEOUT_MS, type MariadbOptions, type PgSslMode, type PostgresOptions, type ServerDatabaseOptions,
} from './types.js';
import { adminSection, controlListen, hubApi } from './validate-ops.js';
import { cookieSecret } from './validate-cookie.js';
import { MARIADB_URL_PATTERN, parseMariadbUrl } from './mariadb.js';
import { POSTGRES_URL_PATTERN, checkSslMode, failoverConflicts, failoverOptions, parsePostgresUrl } from './postgres.js';
import { logFormat, metricsSection, statusSection } from './validate-observability.js';

/**
 * Top-level keys and, for sections, their keys. Anything else is reported as unknown (by
 * unknownKeys(), which looks at own keys only: `toString` or `__proto__` is as unknown as a typo).
 */
const KNOWN_KEYS: Readonly<Record<string, readonly string[] | null>> = {
  listen: null,
  workers: null,
  mode: null,
  proxy: ['login_url', 'connect_timeout_ms', 'idle_timeout_ms', 'websocket_idle_timeout_ms', 'keep_alive_ms', 'max_free_sockets', 'forward_identity'],
  control_listen: null,
  admin: ['token', 'token_file', 'tokens'],
  database: null,
  identity: ['header', 'trusted_proxies', 'max_length'],
  cookie: ['name', 'secure', 'secret', 'secret_file'],
  shard: ['redirect'],
  default_kind: null,
  kind_header: null,
  cache: ['max_entries'],
  store: ['poll_ms', 'timeout_ms', 'busy_timeout_ms', 'snapshot_file'],
  log: ['level', 'format'],
  metrics: ['enabled', 'token', 'token_file', 'gc', 'listen'],
  status: ['loopback_without_token', 'refresh_seconds'],
  postgres: ['pool_max', 'idle_timeout_ms', 'connection_timeout_ms', 'statement_timeout_ms', 'password_file', 'ssl', 'hosts', 'target_session_attrs'],
  mariadb: ['pool_max', 'idle_timeout_ms', 'connection_timeout_ms', 'statement_timeout_ms', 'password_file', 'ssl'],
  kinds: null,
};
const BUCKET_KEYS = ['name', 'upstream', 'weight', 'state', 'hub_api'];
const BUCKET_STATES: readonly BucketState[] = ['active', 'draining'];

/** Bucket and kind names appear in cookies, headers and rendered nginx config: keep them plain. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const NAME_RULE = 'use 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit';
/** Upstream hosts: DNS names (with "_" for container names), IPv4, or a bracketed IPv6 literal. */
export const UPSTREAM_HOST = /^(?:[A-Za-z0-9_.-]+|\[[0-9A-Fa-f:.]+\])$/;
/** RFC 9110 token characters, for header and cookie names. */
const TOKEN_PATTERN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Where each key's value came from, for messages: dotted key → the environment variable
 * (`SHARDER_LISTEN`) or command-line flag (`--listen`) that set it; keys not in it are the file's.
 */
export type EnvSources = ReadonlyMap<string, string>;

export class Problems {
  readonly list: ConfigProblem[] = [];
  /** `processEnv` is where `token_env` secrets are read from. */
  constructor(private readonly file: string, private readonly env: EnvSources, readonly processEnv: NodeJS.ProcessEnv = {}) {}
  add(key: string, message: string): void {
    const from = this.env.get(key) ?? this.env.get(key.replace(/[.[].*$/, ''));
    if (from !== undefined) this.list.push({ source: from.startsWith('--') ? 'command line' : 'environment', key: `${from} (${key})`, message });
    else this.list.push({ source: this.file, key, message });
  }

  /** Whether a command-line flag set `key`. */
  fromFlag(key: string): boolean {
    return this.env.get(key)?.startsWith('--') === true;
  }
}

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return v.length === 0 ? 'an empty list' : 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}

/**
 * Reports every key of `v` that is not in `known`, each naming its full path (`at` is the
 * mapping's own path, or null at the top level). The one place that decides what is unknown:
 * a plain `k in KNOWN` or `KNOWN[k]` would find Object.prototype's `toString`, `constructor`
 * and `__proto__`.
 */
export function unknownKeys(p: Problems, v: Record<string, unknown>, at: string | null, known: readonly string[]): void {
  for (const k of Object.keys(v)) {
    if (known.includes(k)) continue;
    const name = k === '' ? '"" (an empty key)' : k;
    p.add(at === null ? name : `${at}.${name}`, `unknown key (known: ${known.join(', ')})`);
  }
}

export function section(p: Problems, raw: RawConfig, key: string): Record<string, unknown> {
  const v = raw[key];
  if (v === undefined || v === null) return {};
  if (!isObject(v)) {
    p.add(key, `must be a mapping, got ${describe(v)}`);
    return {};
  }
  return v;
}

function str(p: Problems, v: unknown, key: string, dflt: string): string {
  if (v === undefined) return dflt;
  if (typeof v !== 'string' || v === '') {
    p.add(key, `must be a non-empty string, got ${describe(v)}`);
    return dflt;
  }
  return v;
}

function int(p: Problems, v: unknown, key: string, dflt: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    p.add(key, `must be a whole number from ${min} to ${max}, got ${describe(v)}`);
    return dflt;
  }
  return v;
}

export function bool(p: Problems, v: unknown, key: string, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') {
    p.add(key, `must be true or false, got ${describe(v)}`);
    return dflt;
  }
  return v;
}

export function parseListen(text: string): ListenAddress | string {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(text) ?? /^()()(\d{1,5})$/.exec(text);
  if (!m) return 'must be HOST:PORT (e.g. 127.0.0.1:8888 or [::1]:8888) or a port number';
  const host = m[1] || m[2] || '127.0.0.1';
  const port = Number(m[3]);
  if (port > 65535) return `port ${port} is out of range 0-65535`;
  if (m[1] && !isIPv6(host)) return `"${host}" is not an IPv6 address`;
  if (!m[1] && !isIPv4(host) && !/^[A-Za-z0-9.-]+$/.test(host)) return `"${host}" is not a host name or IPv4 address`;
  return { host, port };
}

export function listen(p: Problems, v: unknown, key: string, dflt: string): ListenAddress {
  const text = v === undefined ? dflt : typeof v === 'number' ? String(v) : v;
  if (typeof text !== 'string') {
    p.add(key, `must be HOST:PORT, got ${describe(v)}`);
    return parseListen(dflt) as ListenAddress;
  }
  const r = parseListen(text);
  if (typeof r === 'string') {
    p.add(key, `${r}, got ${describe(text)}`);
    return parseListen(dflt) as ListenAddress;
  }
  return r;
}

function workers(p: Problems, v: unknown): number {
  if (v === 'auto') return Math.min(availableParallelism(), MAX_WORKERS);
  if (v === undefined) return DEFAULT_WORKERS;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_WORKERS) {
    p.add('workers', `must be "auto" or a whole number from 1 to ${MAX_WORKERS}, got ${describe(v)}`);
    return DEFAULT_WORKERS;
  }
  return v;
}

/** What a server database's URL may hold, to check against its section. */
interface ServerUrlParts {
  readonly password?: string | undefined;
  readonly sslMode?: PgSslMode | undefined;
  readonly sslRootCert?: string | undefined;
}

/**
 * The URL of a server database (postgres:, mariadb:) against its section: a password on the
 * command line, then `more` (the backend's own), then settings given twice. Never echoes the value: it may hold a password.
 */
function serverUrl(p: Problems, parts: ServerUrlParts | { problem: string }, name: 'postgres' | 'mariadb', o: ServerDatabaseOptions, passwordVariable: string, more: readonly { key: string; message: string }[] = []): void {
  if ('problem' in parts) {
    p.add('database', parts.problem);
    return;
  }
  if (parts.password !== undefined && p.fromFlag('database')) {
    p.add('database', `holds a password, which every user of this machine can read on a command line (ps): give it in SHARDER_DATABASE, ${passwordVariable} or ${name}.password_file instead`);
    return;
  }
  for (const x of more) p.add(x.key, x.message);
  if (parts.password !== undefined && o.passwordFile !== null) p.add(`${name}.password_file`, 'is set, but the database URL holds a password too: keep one of them');
  if (parts.sslMode !== undefined && o.ssl.mode !== null && parts.sslMode !== o.ssl.mode) p.add(`${name}.ssl.mode`, 'differs from the database URL\'s ?sslmode=: set it in one place');
  if (parts.sslRootCert !== undefined && o.ssl.caFile !== null) p.add(`${name}.ssl.ca_file`, 'is set, but the database URL has ?sslrootcert= too: set it in one place');
}

function database(p: Problems, raw: RawConfig, busyTimeoutMs: number, pg: PostgresOptions, my: MariadbOptions): DatabaseConfig {
  const v = str(p, raw.database, 'database', DEFAULT_DATABASE);
  if (MARIADB_URL_PATTERN.test(v)) {
    serverUrl(p, parseMariadbUrl(v), 'mariadb', my, 'MYSQL_PWD');
    return { backend: 'mariadb', url: v, options: my };
  }
  if (POSTGRES_URL_PATTERN.test(v)) {
    const parts = parsePostgresUrl(v);
    serverUrl(p, parts, 'postgres', pg, 'PGPASSWORD', 'problem' in parts ? [] : failoverConflicts(pg, parts));
    return { backend: 'postgres', url: v, options: pg };
  }
  const m = /^sqlite:(?:\/\/)?(.+)$/.exec(v);
  if (!m) {
    p.add('database', 'must be sqlite:PATH (e.g. sqlite:./data/sharder.db), postgres://USER@HOST:PORT/DB (or postgres: to take everything from PG* variables) or mysql://USER@HOST:PORT/DB (MariaDB or MySQL; mariadb:// too)');
    return { backend: 'sqlite', path: './data/sharder.db', busyTimeoutMs };
  }
  return { backend: 'sqlite', path: m[1]!, busyTimeoutMs };
}

/** A file name that may be absent (null or missing: null). */
function optionalPath(p: Problems, v: unknown, key: string): string | null {
  return v === undefined || v === null ? null : str(p, v, key, '') || null;
}

/**
 * What the postgres: and mariadb: sections share (pool, timeouts, password file, TLS);
 * validated whatever the backend, so that a typo is never silent.
 */
function serverOptions(p: Problems, s: Record<string, unknown>, name: 'postgres' | 'mariadb'): ServerDatabaseOptions {
  let sslRaw: Record<string, unknown> = {};
  if (s.ssl !== undefined && s.ssl !== null) {
    if (!isObject(s.ssl)) p.add(`${name}.ssl`, `must be a mapping with mode and ca_file, got ${describe(s.ssl)}`);
    else sslRaw = s.ssl;
  }
  unknownKeys(p, sslRaw, `${name}.ssl`, ['mode', 'ca_file']);
  let mode: PgSslMode | null = null;
  if (sslRaw.mode !== undefined && sslRaw.mode !== null) {
    const err = typeof sslRaw.mode === 'string' ? checkSslMode(sslRaw.mode) : 'must be a string';
    if (err) p.add(`${name}.ssl.mode`, `${err}, got ${describe(sslRaw.mode)}`);
    else mode = sslRaw.mode as PgSslMode;
  }
  const caFile = optionalPath(p, sslRaw.ca_file, `${name}.ssl.ca_file`);
  if (mode === 'disable' && caFile !== null) p.add(`${name}.ssl.ca_file`, `is set, but ${name}.ssl.mode is disable: remove it or choose verify-full`);
  return {
    poolMax: int(p, s.pool_max, `${name}.pool_max`, DEFAULT_PG_POOL_MAX, 1, 1000),
    idleTimeoutMs: int(p, s.idle_timeout_ms, `${name}.idle_timeout_ms`, DEFAULT_PG_IDLE_TIMEOUT_MS, 1000, 3_600_000),
    connectionTimeoutMs: int(p, s.connection_timeout_ms, `${name}.connection_timeout_ms`, DEFAULT_PG_CONNECTION_TIMEOUT_MS, 100, 600_000),
    statementTimeoutMs: int(p, s.statement_timeout_ms, `${name}.statement_timeout_ms`, DEFAULT_PG_STATEMENT_TIMEOUT_MS, 100, 600_000),
    passwordFile: optionalPath(p, s.password_file, `${name}.password_file`),
    ssl: { mode, caFile },
  };
}

/** The postgres: section. */
function postgresOptions(p: Problems, raw: RawConfig): PostgresOptions {
  const s = section(p, raw, 'postgres');
  const server = serverOptions(p, s, 'postgres');
  const failover = failoverOptions(s);
  for (const x of failover.problems) p.add(x.key, x.message);
  return { ...server, hosts: failover.hosts, targetSessionAttrs: failover.targetSessionAttrs };
}

/** Accepts an address or a CIDR; returns an error text or undefined. */
export function checkCidr(text: string): string | undefined {
  const [addr, prefix, ...rest] = text.split('/');
  const v4 = isIPv4(addr ?? '');
  if (rest.length > 0 || (!v4 && !isIPv6(addr ?? ''))) return `"${text}" is not an IP address or CIDR range`;
  if (prefix !== undefined) {
    const n = Number(prefix);
    if (!/^\d{1,3}$/.test(prefix) || n > (v4 ? 32 : 128)) return `"${text}" has an invalid prefix length`;
  }
  return undefined;
}

function stringList(p: Problems, v: unknown, key: string, dflt: readonly string[]): readonly string[] {
  if (v === undefined) return dflt;
  if (!Array.isArray(v)) {
    p.add(key, `must be a list, got ${describe(v)}`);
    return dflt;
  }
  const out: string[] = [];
  v.forEach((item, i) => {
    if (typeof item !== 'string') p.add(`${key}[${i}]`, `must be a string, got ${describe(item)}`);
    else out.push(item);
  });
  return out;
}

/**
 * Whether a URL (or URL template) can be written into a response header as it is: printable
 * ASCII without spaces. The WHATWG URL parser silently drops tabs and newlines and accepts
 * non-ASCII hosts, so `new URL()` succeeding says nothing about the bytes Node will write
 * (`X-Shard-Upstream`, `Location`); a value that fails here would throw on the first request.
 */
function headerSafeUrl(p: Problems, key: string, text: string): boolean {
  if (/^[\x21-\x7e]+$/.test(text)) return true;
  if (/[\x00-\x20\x7f]/.test(text)) {
    p.add(key, `must not contain white space or control characters (it is sent in a response header), got ${describe(text)}`);
    return false;
  }
  let hint = '';
  if (text.includes('://')) {
    try {
      const host = new URL(text.replaceAll(/\{\w+\}/g, 'x')).host;
      if (/^[\x21-\x7e]+$/.test(host)) hint = `: write the host in its ASCII form, ${host}`;
    } catch { /* no hint */ }
  }
  p.add(key, `must be ASCII (it is sent in a response header)${hint}, got ${describe(text)}`);
  return false;
}

function upstream(p: Problems, v: unknown, key: string): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') {
    p.add(key, `must be an http:// or https:// URL, got ${describe(v)}`);
    return null;
  }
  if (!headerSafeUrl(p, key, v)) return null;
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    p.add(key, `must be an http:// or https:// URL, got ${describe(v)}`);
    return null;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') p.add(key, `must use http:// or https://, got ${describe(v)}`);
  if (url.username || url.password) p.add(key, 'must not contain credentials');
  if (url.search || url.hash) p.add(key, 'must not have a query or fragment');
  // WHATWG URLs accept hosts such as "a;b" or "a{b}$c"; no real host has them, and this URL
  // is rendered into nginx configuration (sharder nginx-config), so refuse them here.
  if (!UPSTREAM_HOST.test(url.hostname)) p.add(key, `host ${JSON.stringify(url.hostname)} is not a host name or IP address (letters, digits, ".", "-", "_")`);
  return v.replace(/\/+$/, '');
}

function bucket(p: Problems, v: unknown, key: string): BucketConfig | undefined {
  if (!isObject(v)) {
    p.add(key, `must be a mapping with at least a name, got ${describe(v)}`);
    return undefined;
  }
  unknownKeys(p, v, key, BUCKET_KEYS);
  let name = '';
  if (typeof v.name !== 'string' || !NAME_PATTERN.test(v.name)) p.add(`${key}.name`, `${NAME_RULE}, got ${describe(v.name)}`);
  else name = v.name;
  let weight = DEFAULT_BUCKET_WEIGHT;
  if (v.weight !== undefined) {
    if (typeof v.weight !== 'number' || !Number.isFinite(v.weight) || v.weight <= 0 || v.weight > 1e6) {
      p.add(`${key}.weight`, `must be a number greater than 0 (at most 1000000), got ${describe(v.weight)}`);
    } else weight = v.weight;
  }
  let state: BucketState = DEFAULT_BUCKET_STATE;
  if (v.state !== undefined) {
    if (!BUCKET_STATES.includes(v.state as BucketState)) p.add(`${key}.state`, `must be one of ${BUCKET_STATES.join(', ')}, got ${describe(v.state)}`);
    else state = v.state as BucketState;
  }
  return { name, upstream: upstream(p, v.upstream, `${key}.upstream`), weight, state, hubApi: hubApi(p, v.hub_api, `${key}.hub_api`) };
}

function kinds(p: Problems, raw: RawConfig): Map<string, KindConfig> {
  const out = new Map<string, KindConfig>();
  const v = raw.kinds;
  if (!isObject(v) || Object.keys(v).length === 0) {
    p.add('kinds', `must map each kind to its buckets (e.g. kinds: { hub: { buckets: [ { name: hub-0 } ] } }), got ${describe(v)}`);
    return out;
  }
  for (const [kindName, kindRaw] of Object.entries(v)) {
    const key = `kinds.${kindName}`;
    if (!NAME_PATTERN.test(kindName)) p.add(key, `is not a valid kind name: ${NAME_RULE}`);
    if (!isObject(kindRaw)) {
      p.add(key, `must be a mapping with a buckets list, got ${describe(kindRaw)}`);
      continue;
    }
    unknownKeys(p, kindRaw, key, ['buckets']);
    const list = kindRaw.buckets;
    if (!Array.isArray(list) || list.length === 0) {
      p.add(`${key}.buckets`, `must be a non-empty list of buckets, got ${describe(list)}`);
      continue;
    }
    const buckets: BucketConfig[] = [];
    const seen = new Map<string, number>();
    list.forEach((b, i) => {
      const bc = bucket(p, b, `${key}.buckets[${i}]`);
      if (!bc) return;
      if (bc.name !== '') {
        const first = seen.get(bc.name);
        if (first !== undefined) p.add(`${key}.buckets[${i}].name`, `duplicate bucket name "${bc.name}" (also at buckets[${first}]): bucket names must be unique within a kind`);
        else seen.set(bc.name, i);
      }
      buckets.push(bc);
    });
    out.set(kindName, { name: kindName, buckets });
  }
  return out;
}

function mode(p: Problems, v: unknown): Mode {
  if (v === undefined) return DEFAULT_MODE;
  if (!MODES.includes(v as Mode)) {
    p.add('mode', `must be one of ${MODES.join(', ')}, got ${describe(v)}`);
    return DEFAULT_MODE;
  }
  return v as Mode;
}

/** The login redirect: an http(s) URL or a path on this host, optionally with `{next}`. */
function loginUrl(p: Problems, v: unknown): string | null {
  if (v === undefined || v === null) return DEFAULT_PROXY_LOGIN_URL;
  const text = str(p, v, 'proxy.login_url', '');
  if (text === '' || !headerSafeUrl(p, 'proxy.login_url', text)) return null;
  const filled = text.replaceAll('{next}', 'x');
  let ok = false;
  if (filled.startsWith('/') && !filled.startsWith('//')) ok = !/[\s\\]/.test(filled);
  else {
    try {
      const u = new URL(filled);
      ok = (u.protocol === 'http:' || u.protocol === 'https:') && !u.username && !u.password;
    } catch {
      ok = false;
    }
  }
  if (!ok) p.add('proxy.login_url', `must be an http:// or https:// URL or a path starting with "/" (optionally with {next}, the requested URL), got ${describe(v)}`);
  return ok ? text : null;
}

function proxySection(p: Problems, raw: RawConfig): ProxyConfig {
  const r = section(p, raw, 'proxy');
  return {
    loginUrl: loginUrl(p, r.login_url),
    connectTimeoutMs: int(p, r.connect_timeout_ms, 'proxy.connect_timeout_ms', DEFAULT_PROXY_CONNECT_TIMEOUT_MS, 100, 600_000),
    idleTimeoutMs: int(p, r.idle_timeout_ms, 'proxy.idle_timeout_ms', DEFAULT_PROXY_IDLE_TIMEOUT_MS, 0, 86_400_000),
    websocketIdleTimeoutMs: int(p, r.websocket_idle_timeout_ms, 'proxy.websocket_idle_timeout_ms', DEFAULT_PROXY_WEBSOCKET_IDLE_TIMEOUT_MS, 0, 604_800_000),
    keepAliveMs: int(p, r.keep_alive_ms, 'proxy.keep_alive_ms', DEFAULT_PROXY_KEEP_ALIVE_MS, 0, 600_000),
    maxFreeSockets: int(p, r.max_free_sockets, 'proxy.max_free_sockets', DEFAULT_PROXY_MAX_FREE_SOCKETS, 1, 65_536),
    forwardIdentity: bool(p, r.forward_identity, 'proxy.forward_identity', DEFAULT_PROXY_FORWARD_IDENTITY),
  };
}

/**
 * Validates raw configuration; throws ConfigError naming every problem. `processEnv` is where
 * secrets named by `token_env` are read from; secret files are read here too, so that a
 * missing one is reported with the others.
 */
export function validateConfig(raw: unknown, file: string | null, env: EnvSources = new Map(), processEnv: NodeJS.ProcessEnv = process.env): Config {
  const p = new Problems(file ?? 'configuration', env, processEnv);
  if (!isObject(raw)) {
    p.add('(top level)', `must be a mapping of keys to values, got ${describe(raw)}`);
    throw new ConfigError(p.list);
  }
  unknownKeys(p, raw, null, Object.keys(KNOWN_KEYS));
  for (const [k, v] of Object.entries(raw)) {
    const known = Object.hasOwn(KNOWN_KEYS, k) ? KNOWN_KEYS[k] : null;
    if (known && isObject(v)) unknownKeys(p, v, k, known);
  }

  const identityRaw = section(p, raw, 'identity');
  const header = str(p, identityRaw.header, 'identity.header', DEFAULT_IDENTITY_HEADER);
  if (!TOKEN_PATTERN.test(header)) p.add('identity.header', `is not a valid header name: ${describe(header)}`);
  const trustedProxies = stringList(p, identityRaw.trusted_proxies, 'identity.trusted_proxies', DEFAULT_TRUSTED_PROXIES);
  trustedProxies.forEach((c, i) => {
    const err = checkCidr(c);
    if (err) p.add(`identity.trusted_proxies[${i}]`, err);
  });
  const maxLength = int(p, identityRaw.max_length, 'identity.max_length', DEFAULT_IDENTITY_MAX_LENGTH, 1, 4096);

  const cookieRaw = section(p, raw, 'cookie');
  const cookieName = str(p, cookieRaw.name, 'cookie.name', DEFAULT_COOKIE_NAME);
  if (!TOKEN_PATTERN.test(cookieName)) p.add('cookie.name', `is not a valid cookie name: ${describe(cookieName)}`);

  const shardRaw = section(p, raw, 'shard');
  let redirect: string | null = null;
  if (shardRaw.redirect !== undefined && shardRaw.redirect !== null) {
    redirect = str(p, shardRaw.redirect, 'shard.redirect', '');
    if (redirect !== '' && !headerSafeUrl(p, 'shard.redirect', redirect)) redirect = null;
    else if (redirect !== '') {
      try {
        new URL(redirect.replaceAll('{bucket}', 'b').replaceAll('{kind}', 'k'), 'http://localhost/');
      } catch {
        p.add('shard.redirect', `must be a URL template such as "https://{bucket}/jupyter/hub", got ${describe(redirect)}`);
      }
    } else redirect = null;
  }

  // null or "off" (the environment cannot say null): no kind header, every request is of default_kind.
  const kindHeader = raw.kind_header === null || raw.kind_header === 'off' ? null : str(p, raw.kind_header, 'kind_header', DEFAULT_KIND_HEADER ?? '') || null;
  if (kindHeader !== null && !TOKEN_PATTERN.test(kindHeader)) p.add('kind_header', `is not a valid header name: ${describe(kindHeader)}`);
  if (kindHeader !== null && [header, header.replace(/[-_]/g, (c) => (c === '-' ? '_' : '-'))].some((h) => h.toLowerCase() === kindHeader.toLowerCase())) {
    p.add('kind_header', 'must differ from identity.header (in either "_" or "-" spelling)');
  }

  const storeRaw = section(p, raw, 'store');
  const busyTimeoutMs = int(p, storeRaw.busy_timeout_ms, 'store.busy_timeout_ms', DEFAULT_SQLITE_BUSY_TIMEOUT_MS, 0, 600_000);

  const logRaw = section(p, raw, 'log');
  let level: LogLevel = DEFAULT_LOG_LEVEL;
  if (logRaw.level !== undefined) {
    if (!LOG_LEVELS.includes(logRaw.level as LogLevel)) p.add('log.level', `must be one of ${LOG_LEVELS.join(', ')}, got ${describe(logRaw.level)}`);
    else level = logRaw.level as LogLevel;
  }

  const kindMap = kinds(p, raw);
  const defaultKind = str(p, raw.default_kind, 'default_kind', DEFAULT_KIND);
  if (kindMap.size > 0 && !kindMap.has(defaultKind)) {
    p.add('default_kind', `names kind "${defaultKind}", which is not under kinds (have: ${[...kindMap.keys()].join(', ')})`);
  }

  const config: Config = {
    file,
    listen: listen(p, raw.listen, 'listen', DEFAULT_LISTEN),
    workers: workers(p, raw.workers),
    mode: mode(p, raw.mode),
    proxy: proxySection(p, raw),
    controlListen: controlListen(p, raw.control_listen),
    admin: adminSection(p, raw),
    database: database(p, raw, busyTimeoutMs, postgresOptions(p, raw), serverOptions(p, section(p, raw, 'mariadb'), 'mariadb')),
    identity: { header, trustedProxies, maxLength },
    cookie: { name: cookieName, secure: bool(p, cookieRaw.secure, 'cookie.secure', false), secret: cookieSecret(p, cookieRaw) ?? DEFAULT_COOKIE_SECRET },
    shard: { redirect },
    defaultKind,
    kindHeader,
    cache: { maxEntries: int(p, section(p, raw, 'cache').max_entries, 'cache.max_entries', DEFAULT_CACHE_MAX_ENTRIES, 0, 100_000_000) },
    store: {
      pollMs: int(p, storeRaw.poll_ms, 'store.poll_ms', DEFAULT_STORE_POLL_MS, 50, 60_000),
      timeoutMs: int(p, storeRaw.timeout_ms, 'store.timeout_ms', DEFAULT_STORE_TIMEOUT_MS, 100, 600_000),
      snapshotFile: optionalPath(p, storeRaw.snapshot_file, 'store.snapshot_file'),
    },
    log: { level, format: logFormat(p, logRaw.format) },
    metrics: metricsSection(p, raw),
    status: statusSection(p, raw),
    kinds: kindMap,
  };
  if (config.store.snapshotFile !== null && config.database.backend !== 'postgres') {
    p.add('store.snapshot_file', 'is for PostgreSQL (a local copy of its table for starting while it is away); with SQLite the database is a local file already');
  }
  if (config.store.snapshotFile !== null && config.workers > 1) {
    p.add('store.snapshot_file', `is written by one process; with workers: ${config.workers} each worker would write it: run one worker per instance with a snapshot`);
  }
  if (p.list.length > 0) throw new ConfigError(p.list);
  return config;
}
