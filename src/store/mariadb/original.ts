/** The original sharder's shard table in MariaDB/MySQL (store/original.ts). */
import mysql from 'mysql2/promise';
import { parseMariadbUrl } from '../../config/mariadb.js';
import { NotOriginalError, SourceUnavailableError } from '../../errors.js';
import { NOT_ORIGINAL, pagesById, type OriginalReader, type OriginalRow, type OriginalSource } from '../original.js';

/** How long connecting to the original's server may take. */
const CONNECT_TIMEOUT_MS = 10_000;

/** mysql://, mariadb://, or SQLAlchemy's mysql+pymysql:// (any +driver). */
const URL_PATTERN = /^(?:mysql|mariadb)(?:\+[a-z0-9]+)?:\/\//i;

function describe(src: OriginalSource): string {
  const p = parseMariadbUrl(src.location);
  return 'problem' in p
    ? 'mysql://(unparsable URL)'
    : `mysql://${p.socket !== undefined ? `[${p.socket}]` : `${p.host}:${p.port}`}/${p.database}`;
}

async function* mariadbRows(src: OriginalSource, pageSize: number): AsyncGenerator<OriginalRow[]> {
  const where = describe(src);
  const p = parseMariadbUrl(src.location);
  if ('problem' in p) throw new SourceUnavailableError(`cannot read ${where}: the URL ${p.problem}`);
  let c: mysql.Connection;
  try {
    c = await mysql.createConnection({
      ...(p.socket !== undefined ? { socketPath: p.socket } : { host: p.host, port: p.port }),
      user: p.user ?? process.env.USER,
      password: p.password ?? process.env.MYSQL_PWD,
      database: p.database,
      connectTimeout: CONNECT_TIMEOUT_MS,
      charset: 'UTF8MB4_GENERAL_CI',
      supportBigNumbers: true,
    });
  } catch (err) {
    throw new SourceUnavailableError(`cannot connect to ${where}: ${(err as Error).message}`, { cause: err });
  }
  c.on('error', () => undefined);
  try {
    yield* pagesById(async (after) => {
      try {
        const [r] =
          after === undefined
            ? await c.query<mysql.RowDataPacket[]>('SELECT id, kind, bucket, name FROM shard ORDER BY id LIMIT ?', [
                pageSize,
              ])
            : await c.query<mysql.RowDataPacket[]>(
                'SELECT id, kind, bucket, name FROM shard WHERE id > ? ORDER BY id LIMIT ?',
                [after, pageSize],
              );
        return r.map((x) => ({
          id: Number(x.id),
          kind: x.kind as string | null,
          bucket: x.bucket as string | null,
          name: x.name as string | null,
        }));
      } catch (err) {
        // ER_NO_SUCH_TABLE, ER_BAD_FIELD_ERROR.
        const errno = (err as { errno?: number }).errno;
        if (errno === 1146 || errno === 1054) throw new NotOriginalError(`${where} ${NOT_ORIGINAL}`);
        throw new SourceUnavailableError(`cannot read ${where}: ${(err as Error).message}`, { cause: err });
      }
    }, pageSize);
  } finally {
    await c.end().catch(() => undefined);
  }
}

export const MARIADB_ORIGINAL: OriginalReader = {
  example: 'mysql://…',
  parse: (url) =>
    URL_PATTERN.test(url) ? { backend: 'mariadb', location: url.replace(URL_PATTERN, 'mysql://') } : undefined,
  describe,
  pages: mariadbRows,
};
