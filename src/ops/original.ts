/**
 * Importing the original Python sharder's database: the rows come from the store registry's
 * reader for the source's engine (store/original.ts); the importer skips the original's
 * placeholder rows.
 */
export { describeOriginal, parseOriginalUrl, readOriginal } from '../store/registry.js';
export { ORIGINAL_PAGE_SIZE, type OriginalRow, type OriginalSource } from '../store/original.js';

/** The original's placeholder rows: `dummy-<bucket>` in that very bucket. */
export const isPlaceholder = (r: { name: string | null; bucket: string | null }): boolean =>
  r.bucket !== null && r.name === `dummy-${r.bucket}`;
