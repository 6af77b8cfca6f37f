/**
 * Checking raw configuration into `Config`, purely: no file and no environment variable is read
 * here (the loader reads secret files first, src/config/secrets.ts). One check per section,
 * every problem collected (never the first only), each naming the source and the key, as
 * oauth2-proxy's pkg/validation does. Known keys, defaults and ranges come from the schema.
 */
import { ConfigError } from '../errors.js';
import { cookieSecret } from './check-cookie.js';
import { defaultKind, kinds } from './check-kinds.js';
import { metricsSection, statusSection } from './check-observability.js';
import { adminSection, controlListen } from './check-ops.js';
import {
  cookieName,
  headerName,
  kindHeader,
  proxySection,
  shardRedirect,
  trustedProxies,
  workers,
} from './check-serve.js';
import { database, mariadbOptions, postgresOptions, snapshotRules } from './check-store.js';
import { KEY_TABLE } from './schema.js';
import {
  type EnvSources,
  Problems,
  type SecretFileRead,
  boolKey,
  describe,
  enumKey,
  intKey,
  isObject,
  listen,
  optionalPath,
  section,
  unknownKeys,
} from './rules.js';
import type { Config, LogFormat, LogLevel, Mode } from './types.js';

export interface CheckOptions {
  /** Which variable or flag set which key (load.ts `applyEnv`, `applyFlags`). */
  readonly sources?: EnvSources;
  /** Secret files by the key that names them, as the loader read them. */
  readonly secretFiles?: ReadonlyMap<string, SecretFileRead>;
  /** Where `token_env` secrets are looked up. */
  readonly processEnv?: NodeJS.ProcessEnv;
}

/** Checks raw configuration; throws ConfigError naming every problem. */
export function checkConfig(raw: unknown, file: string | null, opts: CheckOptions = {}): Config {
  const p = new Problems(file ?? 'configuration', {
    keys: KEY_TABLE,
    sources: opts.sources ?? new Map(),
    secretFiles: opts.secretFiles ?? new Map(),
    processEnv: opts.processEnv ?? {},
  });
  if (!isObject(raw)) {
    p.add('(top level)', `must be a mapping of keys to values, got ${describe(raw)}`);
    throw new ConfigError(p.list);
  }
  unknownKeys(p, raw, null, '');
  for (const [k, v] of Object.entries(raw)) {
    if (KEY_TABLE.known('').includes(k) && KEY_TABLE.known(k).length > 0 && isObject(v)) unknownKeys(p, v, k, k);
  }

  const identityRaw = section(p, raw, 'identity');
  const header = headerName(p, identityRaw.header, 'identity.header');
  const trusted = trustedProxies(p, identityRaw.trusted_proxies);
  const maxLength = intKey(p, identityRaw.max_length, 'identity.max_length');

  const cookieRaw = section(p, raw, 'cookie');
  const cookie = cookieName(p, cookieRaw.name);
  const redirect = shardRedirect(p, section(p, raw, 'shard').redirect);
  const kindHeaderName = kindHeader(p, raw.kind_header, header);

  const storeRaw = section(p, raw, 'store');
  const busyTimeoutMs = intKey(p, storeRaw.busy_timeout_ms, 'store.busy_timeout_ms');

  const logRaw = section(p, raw, 'log');
  const level = enumKey<LogLevel>(p, logRaw.level, 'log.level');

  const kindMap = kinds(p, raw);
  const dfltKind = defaultKind(p, raw.default_kind, kindMap);

  const config: Config = {
    file,
    listen: listen(p, raw.listen, 'listen', KEY_TABLE.row('listen').default as string),
    workers: workers(p, raw.workers),
    mode: enumKey<Mode>(p, raw.mode, 'mode'),
    proxy: proxySection(p, section(p, raw, 'proxy')),
    controlListen: controlListen(p, raw.control_listen),
    admin: adminSection(p, raw),
    database: database(p, raw, busyTimeoutMs, postgresOptions(p, raw), mariadbOptions(p, raw)),
    identity: { header, trustedProxies: trusted, maxLength },
    cookie: { name: cookie, secure: boolKey(p, cookieRaw.secure, 'cookie.secure'), secret: cookieSecret(p, cookieRaw) },
    shard: { redirect },
    defaultKind: dfltKind,
    kindHeader: kindHeaderName,
    cache: { maxEntries: intKey(p, section(p, raw, 'cache').max_entries, 'cache.max_entries') },
    store: {
      pollMs: intKey(p, storeRaw.poll_ms, 'store.poll_ms'),
      timeoutMs: intKey(p, storeRaw.timeout_ms, 'store.timeout_ms'),
      snapshotFile: optionalPath(p, storeRaw.snapshot_file, 'store.snapshot_file'),
    },
    log: { level, format: enumKey<LogFormat>(p, logRaw.format, 'log.format') },
    metrics: metricsSection(p, raw),
    status: statusSection(p, raw),
    kinds: kindMap,
  };
  snapshotRules(p, config);
  if (p.list.length > 0) throw new ConfigError(p.list);
  return config;
}
