/**
 * Reading the original Python sharder's database: its SQLAlchemy table
 *   shard (id INTEGER PRIMARY KEY, kind VARCHAR(256), bucket VARCHAR(256), name VARCHAR(256))
 * in SQLite or PostgreSQL, in id order (the order the original assigned in), page by page.
 * The original inserted a placeholder row `dummy-<bucket>` into each bucket so that its
 * GROUP BY saw empty buckets; the importer skips those.
 */
import { resolve } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { BadInputError, NotOriginalError, ShardError, SourceUnavailableError } from '../errors.js';

export interface OriginalRow {
  id: number;
  kind: string | null;
  bucket: string | null;
  name: string | null;
}

export const ORIGINAL_PAGE_SIZE = 1000;
/** How long connecting to the original's PostgreSQL may take. */
const PG_CONNECT_TIMEOUT_MS = 10_000;

export type OriginalSource = { backend: 'sqlite'; path: string } | { backend: 'postgres'; url: string };

/**
 * A PostgreSQL URL (postgres://, postgresql://, or SQLAlchemy's postgresql+psycopg2://), a
 * SQLite URL as SQLAlchemy writes it (sqlite:///relative.db, sqlite:////absolute.db), sqlite:PATH,
 * or a plain file path.
 */
export function parseOriginalUrl(url: string): OriginalSource {
  const pgm = /^postgres(?:ql)?(?:\+[a-z0-9]+)?:\/\//i.exec(url);
  if (pgm) return { backend: 'postgres', url: `postgresql://${url.slice(pgm[0].length)}` };
  if (url.startsWith('sqlite://')) {
    const rest = url.slice('sqlite://'.length);
    if (!rest.startsWith('/') || rest.length < 2) throw new BadInputError('a SQLite URL is sqlite:///relative/path.db or sqlite:////absolute/path.db (as SQLAlchemy writes it), or sqlite:PATH');
    return { backend: 'sqlite', path: resolve(rest.slice(1)) };
  }
  if (url.startsWith('sqlite:')) return { backend: 'sqlite', path: resolve(url.slice('sqlite:'.length)) };
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) throw new BadInputError(`unsupported database URL scheme in "${url.split('://')[0]}://…": use postgres://…, sqlite:///PATH or a file path`);
  return { backend: 'sqlite', path: resolve(url) };
}

/** Where the source is, for messages: never the password. */
export function describeOriginal(src: OriginalSource): string {
  if (src.backend === 'sqlite') return src.path;
  try {
    const u = new URL(src.url);
    return `postgresql://${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}`;
  } catch {
    return 'postgresql://(unparsable URL)';
  }
}

const NOT_ORIGINAL = 'has no table shard (id, kind, bucket, name): is it the original sharder\'s database?';

/**
 * A driver error reading the source file: a file that is not a database, or is damaged, is
 * the wrong input (400, exit 2); anything else (permissions, I/O) means it cannot be read now.
 */
function sqliteReadError(path: string, err: unknown): ShardError {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^SQLITE_(NOTADB|CORRUPT)/.test(code)) {
    return new NotOriginalError(`${path} is not a SQLite database, or is damaged (${code}): give the original sharder's database file (e.g. sqlite:////srv/sharder/sharder.sqlite)`, { cause: err });
  }
  return new SourceUnavailableError(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
}

function* sqliteRows(path: string, pageSize: number): Generator<OriginalRow[]> {
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch (err) {
    throw new SourceUnavailableError(`cannot open SQLite database ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    let cols: Set<string>;
    let page: Database.Statement<[number, number], OriginalRow>;
    try {
      // Opening reads nothing: the first statement is where a file that is not a database fails.
      cols = new Set((db.prepare('PRAGMA table_info(shard)').all() as { name: string }[]).map((c) => c.name.toLowerCase()));
      if (!['id', 'kind', 'bucket', 'name'].every((c) => cols.has(c))) throw new NotOriginalError(`${path} ${NOT_ORIGINAL}`);
      page = db.prepare<[number, number], OriginalRow>('SELECT id, kind, bucket, name FROM shard WHERE id > ? ORDER BY id LIMIT ?');
    } catch (err) {
      throw err instanceof ShardError ? err : sqliteReadError(path, err);
    }
    let after = Number.MIN_SAFE_INTEGER;
    for (;;) {
      let rows: OriginalRow[];
      try {
        rows = page.all(after, pageSize);
      } catch (err) {
        throw sqliteReadError(path, err);
      }
      if (rows.length === 0) return;
      yield rows;
      if (rows.length < pageSize) return;
      after = rows.at(-1)!.id;
    }
  } finally {
    db.close();
  }
}

async function* postgresRows(src: { url: string }, pageSize: number): AsyncGenerator<OriginalRow[]> {
  const where = describeOriginal({ backend: 'postgres', url: src.url });
  const client = new pg.Client({ connectionString: src.url, connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS, application_name: 'sharder import-original' });
  // An idle client can still emit 'error' (server restart); without a listener it would crash.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    throw new SourceUnavailableError(`cannot connect to ${where}: ${(err as Error).message}`, { cause: err });
  }
  try {
    let after: number | undefined;
    for (;;) {
      let rows: OriginalRow[];
      try {
        // The first page has no lower bound: the parameter takes the id column's type (often
        // int4), which a sentinel like MIN_SAFE_INTEGER would overflow.
        const r = after === undefined
          ? await client.query<OriginalRow>('SELECT id, kind, bucket, name FROM shard ORDER BY id LIMIT $1', [pageSize])
          : await client.query<OriginalRow>('SELECT id, kind, bucket, name FROM shard WHERE id > $1 ORDER BY id LIMIT $2', [after, pageSize]);
        rows = r.rows.map((x) => ({ ...x, id: Number(x.id) }));
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === '42P01' || code === '42703') throw new NotOriginalError(`${where} ${NOT_ORIGINAL}`);
        throw new SourceUnavailableError(`cannot read ${where}: ${(err as Error).message}`, { cause: err });
      }
      if (rows.length === 0) return;
      yield rows;
      if (rows.length < pageSize) return;
      after = rows.at(-1)!.id;
    }
  } finally {
    await client.end().catch(() => {});
  }
}

/** Every row of the original's shard table, in id order, a page at a time. */
export async function* readOriginal(src: OriginalSource, pageSize = ORIGINAL_PAGE_SIZE): AsyncGenerator<OriginalRow> {
  const pages = src.backend === 'sqlite' ? sqliteRows(src.path, pageSize) : postgresRows(src, pageSize);
  for await (const page of pages) yield* page;
}

/** The original's placeholder rows: `dummy-<bucket>` in that very bucket. */
export const isPlaceholder = (r: { name: string | null; bucket: string | null }): boolean => r.bucket !== null && r.name === `dummy-${r.bucket}`;
