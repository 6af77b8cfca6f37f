/**
 * The store backends, one line each. A backend is a folder (sqlite/, postgres/, …) whose
 * backend.ts exports an entry: where a configured database lives (for messages, before
 * connecting), how to open it migrated and ready, how `sharder backup` copies it (or says
 * how to), and how `import-original` reads the original sharder's table from that engine.
 * openStore, backupStore and the original reader go through this table and nothing else
 * switches on the backend.
 */
import type { Config, DatabaseConfig } from '../config/types.js';
import { BackupUnsupportedError, BadInputError } from '../errors.js';
import type { Logger } from '../log.js';
import { ORIGINAL_PAGE_SIZE, type OriginalReader, type OriginalRow, type OriginalSource } from './original.js';
import { MARIADB_BACKEND } from './mariadb/backend.js';
import { POSTGRES_BACKEND } from './postgres/backend.js';
import { SQLITE_BACKEND } from './sqlite/backend.js';
import type { Store } from './types.js';

/** Where configuration values came from, for messages, and the environment a driver reads (PG* …). */
export interface ConfigSource {
  readonly file: string;
  readonly env: NodeJS.ProcessEnv;
}

/** What `sharder backup` reports. */
export interface BackupReport {
  readonly source: string;
  readonly target: string;
  readonly bytes: number;
  readonly assignments: number;
  readonly schemaVersion: number;
  readonly ms: number;
}

type DatabaseOf<N extends DatabaseConfig['backend']> = Extract<DatabaseConfig, { backend: N }>;

export interface Backend<N extends DatabaseConfig['backend']> {
  /** The `backend` of the validated database config, and Store.backend. */
  readonly name: N;
  /** Where the store lives, without secrets (a file path, or host:port/db). */
  location(db: DatabaseOf<N>, src: ConfigSource): string;
  /** Opens the store, migrated and ready; throws StoreUnavailableError when it cannot. */
  open(db: DatabaseOf<N>, src: ConfigSource, log?: Logger): Promise<Store>;
  /** `sharder backup FILE`: copies the database, or rejects saying how to back it up. */
  backup?(db: DatabaseOf<N>, target: string, opts: { force: boolean }): Promise<BackupReport>;
  /** Reads the original sharder's table from this engine (import-original). */
  readonly original?: OriginalReader;
}

/** The registry: one line per backend. */
const BACKENDS: { readonly [N in DatabaseConfig['backend']]: Backend<N> } = {
  sqlite: SQLITE_BACKEND,
  postgres: POSTGRES_BACKEND,
  mariadb: MARIADB_BACKEND,
};

function backendOf<N extends DatabaseConfig['backend']>(db: DatabaseOf<N>): Backend<N> {
  return BACKENDS[db.backend];
}

const sourceOf = (config: Config): ConfigSource => ({ file: config.file ?? 'configuration', env: process.env });

/** Opens the store the configuration names, migrated and ready. */
export function openStore(config: Config, log?: Logger): Promise<Store> {
  return backendOf(config.database).open(config.database, sourceOf(config), log);
}

/** Where the configured store lives, without secrets and without connecting. */
export function storeLocation(config: Config): string {
  return backendOf(config.database).location(config.database, sourceOf(config));
}

/**
 * `sharder backup`: copies the configured database to `target` while servers keep writing
 * (SQLite), or rejects with BackupUnsupportedError saying how to back this backend up.
 */
export function backupStore(config: Config, target: string, opts: { force: boolean }): Promise<BackupReport> {
  const b = backendOf(config.database);
  if (b.backup === undefined)
    return Promise.reject(
      new BackupUnsupportedError(`sharder backup cannot copy a ${b.name} database: use the database's own backup tool`),
    );
  return b.backup(config.database, target, opts);
}

/** Every backend's entry, for what is asked of all of them (the original's readers). */
const ALL: readonly { readonly name: string; readonly original?: OriginalReader | undefined }[] =
  Object.values(BACKENDS);

const readers = (): OriginalReader[] => ALL.flatMap((b) => (b.original ? [b.original] : []));

function readerOf(src: OriginalSource): OriginalReader {
  const r = ALL.find((b) => b.name === src.backend)?.original;
  if (r === undefined) throw new BadInputError(`no reader for the original's ${src.backend} database`);
  return r;
}

/** The original sharder's database a URL names (import-original), by the first backend that knows the URL. */
export function parseOriginalUrl(url: string): OriginalSource {
  for (const r of readers()) {
    const src = r.parse(url);
    if (src !== undefined) return src;
  }
  throw new BadInputError(
    `unsupported database URL scheme in "${url.split('://')[0]}://…": use ${readers()
      .map((r) => r.example)
      .join(', ')}`,
  );
}

/** Where the original's database is, for messages: never the password. */
export function describeOriginal(src: OriginalSource): string {
  return readerOf(src).describe(src);
}

/** Every row of the original's shard table, in id order, a page at a time. */
export async function* readOriginal(src: OriginalSource, pageSize = ORIGINAL_PAGE_SIZE): AsyncGenerator<OriginalRow> {
  for await (const page of readerOf(src).pages(src, pageSize)) yield* page;
}
