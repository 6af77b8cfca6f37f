import type { Assignment, Store } from './types.js';

/** Rows per page of an export: one short query each. */
export const EXPORT_PAGE_SIZE = 1000;

/**
 * Store.export() for every backend: keyset pages through list(), kind by kind, by name. Each
 * page is its own query, so no statement, transaction or cursor stays open while the caller
 * consumes the rows (which may be slow): better-sqlite3 allows no other statement on the
 * connection while an iterator is open, and a PostgreSQL cursor would hold a connection and
 * keep old row versions from being vacuumed.
 */
export async function* exportByPages(
  store: Pick<Store, 'kinds' | 'list'>,
  opts: { kind?: string | undefined; pageSize?: number | undefined } = {},
): AsyncIterable<Assignment> {
  const pageSize = opts.pageSize ?? EXPORT_PAGE_SIZE;
  const kinds = opts.kind === undefined ? await store.kinds() : [opts.kind];
  for (const kind of kinds) {
    let after: string | undefined;
    for (;;) {
      const page = await store.list(kind, { after, limit: pageSize });
      for (const row of page) yield row;
      if (page.length < pageSize) break;
      after = page.at(-1)!.name;
    }
  }
}
