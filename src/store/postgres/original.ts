/** The original sharder's shard table in PostgreSQL (store/original.ts). */
import pg from 'pg';
import { NotOriginalError, SourceUnavailableError } from '../../errors.js';
import { NOT_ORIGINAL, pagesById, type OriginalReader, type OriginalRow, type OriginalSource } from '../original.js';

/** How long connecting to the original's PostgreSQL may take. */
const PG_CONNECT_TIMEOUT_MS = 10_000;

function describe(src: OriginalSource): string {
  try {
    const u = new URL(src.location);
    return `postgresql://${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}`;
  } catch {
    return 'postgresql://(unparsable URL)';
  }
}

async function* postgresRows(src: OriginalSource, pageSize: number): AsyncGenerator<OriginalRow[]> {
  const where = describe(src);
  const client = new pg.Client({
    connectionString: src.location,
    connectionTimeoutMillis: PG_CONNECT_TIMEOUT_MS,
    application_name: 'sharder import-original',
  });
  // An idle client can still emit 'error' (server restart); without a listener it would crash.
  client.on('error', () => {});
  try {
    await client.connect();
  } catch (err) {
    throw new SourceUnavailableError(`cannot connect to ${where}: ${(err as Error).message}`, { cause: err });
  }
  try {
    yield* pagesById(async (after) => {
      try {
        const r =
          after === undefined
            ? await client.query<OriginalRow>('SELECT id, kind, bucket, name FROM shard ORDER BY id LIMIT $1', [
                pageSize,
              ])
            : await client.query<OriginalRow>(
                'SELECT id, kind, bucket, name FROM shard WHERE id > $1 ORDER BY id LIMIT $2',
                [after, pageSize],
              );
        return r.rows.map((x) => ({ ...x, id: Number(x.id) }));
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === '42P01' || code === '42703') throw new NotOriginalError(`${where} ${NOT_ORIGINAL}`);
        throw new SourceUnavailableError(`cannot read ${where}: ${(err as Error).message}`, { cause: err });
      }
    }, pageSize);
  } finally {
    await client.end().catch(() => {});
  }
}

/** postgres://, postgresql://, or SQLAlchemy's postgresql+psycopg2://. */
export const POSTGRES_ORIGINAL: OriginalReader = {
  example: 'postgres://…',
  parse(url) {
    const m = /^postgres(?:ql)?(?:\+[a-z0-9]+)?:\/\//i.exec(url);
    return m ? { backend: 'postgres', location: `postgresql://${url.slice(m[0].length)}` } : undefined;
  },
  describe,
  pages: postgresRows,
};
