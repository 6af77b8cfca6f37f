/** The original sharder's shard table in a SQLite file (store/original.ts). */
import { resolve } from 'node:path';
import Database from 'better-sqlite3';
import { BadInputError, NotOriginalError, ShardError, SourceUnavailableError } from '../../errors.js';
import { NOT_ORIGINAL, type OriginalReader, type OriginalRow, type OriginalSource } from '../original.js';

/**
 * A driver error reading the source file: a file that is not a database, or is damaged, is
 * the wrong input (400, exit 2); anything else (permissions, I/O) means it cannot be read now.
 */
function sqliteReadError(path: string, err: unknown): ShardError {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && /^SQLITE_(NOTADB|CORRUPT)/.test(code)) {
    return new NotOriginalError(
      `${path} is not a SQLite database, or is damaged (${code}): give the original sharder's database file (e.g. sqlite:////srv/sharder/sharder.sqlite)`,
      { cause: err },
    );
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
      cols = new Set(
        (db.prepare('PRAGMA table_info(shard)').all() as { name: string }[]).map((c) => c.name.toLowerCase()),
      );
      if (!['id', 'kind', 'bucket', 'name'].every((c) => cols.has(c)))
        throw new NotOriginalError(`${path} ${NOT_ORIGINAL}`);
      page = db.prepare<[number, number], OriginalRow>(
        'SELECT id, kind, bucket, name FROM shard WHERE id > ? ORDER BY id LIMIT ?',
      );
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

/**
 * A SQLite URL as SQLAlchemy writes it (sqlite:///relative.db, sqlite:////absolute.db),
 * sqlite:PATH, or a plain file path (anything without a URL scheme).
 */
export const SQLITE_ORIGINAL: OriginalReader = {
  example: 'sqlite:///PATH or a file path',
  parse(url) {
    if (url.startsWith('sqlite://')) {
      const rest = url.slice('sqlite://'.length);
      if (!rest.startsWith('/') || rest.length < 2)
        throw new BadInputError(
          'a SQLite URL is sqlite:///relative/path.db or sqlite:////absolute/path.db (as SQLAlchemy writes it), or sqlite:PATH',
        );
      return { backend: 'sqlite', location: resolve(rest.slice(1)) };
    }
    if (url.startsWith('sqlite:')) return { backend: 'sqlite', location: resolve(url.slice('sqlite:'.length)) };
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return undefined;
    return { backend: 'sqlite', location: resolve(url) };
  },
  describe: (src: OriginalSource) => src.location,
  pages: (src, pageSize) => sqliteRows(src.location, pageSize),
};
