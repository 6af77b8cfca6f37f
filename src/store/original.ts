/**
 * Reading the original Python sharder's database: its SQLAlchemy table
 *   shard (id INTEGER PRIMARY KEY, kind VARCHAR(256), bucket VARCHAR(256), name VARCHAR(256))
 * in id order (the order the original assigned in), page by page. Each backend folder has
 * the reader for its own engine (sqlite/original.ts, postgres/original.ts); the registry
 * (registry.ts) picks one by the URL. What the importer does with the rows is in ops/.
 */

export interface OriginalRow {
  id: number;
  kind: string | null;
  bucket: string | null;
  name: string | null;
}

/** Where the original's database is: the backend that reads it, and its own address. */
export interface OriginalSource {
  readonly backend: string;
  /** A file path (SQLite) or a connection URL. */
  readonly location: string;
}

/** One backend's reader of the original's table. */
export interface OriginalReader {
  /** The source a URL names, or undefined when the URL is not this backend's. */
  parse(url: string): OriginalSource | undefined;
  /** Where the source is, for messages: never the password. */
  describe(src: OriginalSource): string;
  /** Pages of rows in id order. */
  pages(src: OriginalSource, pageSize: number): AsyncIterable<OriginalRow[]> | Iterable<OriginalRow[]>;
  /** How a URL of this backend is written, for the message about an unknown scheme. */
  readonly example: string;
}

export const ORIGINAL_PAGE_SIZE = 1000;

export const NOT_ORIGINAL = "has no table shard (id, kind, bucket, name): is it the original sharder's database?";

/**
 * The pages of the shard table in id order, each read by `page` (after: the previous page's
 * last id; undefined for the first page, which has no lower bound: a sentinel such as
 * MIN_SAFE_INTEGER would overflow an int4 id column), until a short or empty page.
 */
export async function* pagesById(
  page: (after: number | undefined) => Promise<OriginalRow[]>,
  pageSize: number,
): AsyncGenerator<OriginalRow[]> {
  let after: number | undefined;
  for (;;) {
    const rows = await page(after);
    if (rows.length === 0) return;
    yield rows;
    if (rows.length < pageSize) return;
    after = rows.at(-1)!.id;
  }
}
