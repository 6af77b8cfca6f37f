/**
 * Export and import of assignments, and import from the original sharder's database.
 *
 * Export streams: the store yields pages, each row becomes one line, and the caller writes
 * lines with backpressure, so a million rows never sit in memory.
 *
 * Import reads its input twice, both times as a stream: the first pass checks every row
 * (format, kind and bucket configured, name acceptable) and refuses the whole input, naming
 * the bad rows, if any is wrong; the second pass imports in batches, each one transaction.
 * Importing the same input again changes nothing (idempotent). A row naming another bucket
 * than the stored one is a conflict: reported and left alone unless `overwrite` is asked.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { randomBytes } from 'node:crypto';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ImportFormatError, type InputProblem, PayloadTooLargeError } from '../errors.js';
import type { ImportConflict, ImportRow } from '../store/types.js';
import { type OpsContext, type Who, checkObjectName, checkReason, knownKind } from './context.js';
import {
  CSV_HEADER,
  type Format,
  type RawRow,
  csvHeader,
  csvRow,
  detectFormat,
  formatRow,
  jsonlRow,
} from './format.js';
import { type OriginalSource, describeOriginal, isPlaceholder, readOriginal } from './original.js';

export const IMPORT_BATCH_SIZE = 1000;
/** Bad rows named in an import error (all are counted). */
const MAX_LISTED_PROBLEMS = 20;
/** Conflicts listed in an import report (all are counted). */
export const MAX_LISTED_CONFLICTS = 1000;

/** The lines of an export, header first (CSV). */
export async function* exportLines(
  ctx: OpsContext,
  opts: { kind?: string | undefined; format: Format },
): AsyncGenerator<string> {
  const kind = opts.kind === undefined ? undefined : await knownKind(ctx, opts.kind);
  if (opts.format === 'csv') yield CSV_HEADER;
  for await (const a of ctx.store.export({ kind })) yield formatRow(opts.format, a);
}

/** One row of input, or the reason it is unusable, with where it is. */
interface SourceItem {
  at: string;
  row: RawRow | string;
}

export interface ImportOptions extends Who {
  /** Only rows of this kind are imported (rows without a kind count as this kind). */
  kind?: string | undefined;
  overwrite?: boolean | undefined;
  batchSize?: number | undefined;
}

export interface ImportReport {
  source: string;
  format: Format | 'original';
  /** Rows read (placeholder and other-kind rows included). */
  rows: number;
  inserted: number;
  unchanged: number;
  overwritten: number;
  conflicts: ImportConflict[];
  conflict_count: number;
  /** Rows of other kinds than --kind, not imported. */
  other_kind: number;
  /** The original sharder's `dummy-<bucket>` rows, not imported. */
  placeholders: number;
  batches: number;
}

function rowProblem(ctx: OpsContext, r: RawRow, kind: string): string | undefined {
  const k = ctx.config().kinds.get(kind);
  if (!k) return `kind "${kind}" is not configured`;
  try {
    checkObjectName(ctx, r.name);
  } catch (err) {
    return (err as Error).message;
  }
  if (!k.buckets.some((b) => b.name === r.bucket)) {
    return (
      `bucket "${r.bucket}" is not in the configuration of kind "${kind}": add it first (with state: draining if ` +
      'it should get no new objects)'
    );
  }
  return undefined;
}

async function importItems(
  ctx: OpsContext,
  source: string,
  format: ImportReport['format'],
  items: () => AsyncIterable<SourceItem | 'placeholder'>,
  opts: ImportOptions,
): Promise<ImportReport> {
  const reason = checkReason(opts.reason) ?? `import ${source}`;
  const only = opts.kind;
  const defaultKind = only ?? ctx.config().defaultKind;
  const batchSize = opts.batchSize ?? IMPORT_BATCH_SIZE;
  const report: ImportReport = {
    source,
    format,
    rows: 0,
    inserted: 0,
    unchanged: 0,
    overwritten: 0,
    conflicts: [],
    conflict_count: 0,
    other_kind: 0,
    placeholders: 0,
    batches: 0,
  };

  // Pass 1: every row must be usable, or nothing is imported.
  const problems: InputProblem[] = [];
  let more = 0;
  for await (const item of items()) {
    if (item === 'placeholder') continue;
    const { at, row } = item;
    const problem =
      typeof row === 'string'
        ? row
        : only !== undefined && (row.kind ?? defaultKind) !== only
          ? undefined
          : rowProblem(ctx, row, row.kind ?? defaultKind);
    if (problem === undefined) continue;
    if (problems.length < MAX_LISTED_PROBLEMS) problems.push({ at, message: problem });
    else more++;
  }
  if (problems.length > 0) throw new ImportFormatError(source, problems, more);

  // Pass 2: import in batches.
  const id = `i-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const touched = new Set<string>();
  let batch: ImportRow[] = [];
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const n = ++report.batches;
    const r = await ctx.store.importBatch(
      batch,
      { overwrite: opts.overwrite ?? false },
      { actor: opts.actor, reason, batch: `${id}/${n}` },
    );
    report.inserted += r.inserted;
    report.unchanged += r.unchanged;
    report.overwritten += r.overwritten;
    report.conflict_count += r.conflicts.length;
    for (const c of r.conflicts) if (report.conflicts.length < MAX_LISTED_CONFLICTS) report.conflicts.push(c);
    if (r.overwritten > 0) for (const row of batch) touched.add(row.kind);
    batch = [];
  };
  for await (const item of items()) {
    report.rows++;
    if (item === 'placeholder') {
      report.placeholders++;
      continue;
    }
    const { at, row } = item;
    if (typeof row === 'string')
      throw new ImportFormatError(
        source,
        [{ at, message: `${row} (the input changed during the import; the rows before it were imported)` }],
        0,
      );
    const kind = row.kind ?? defaultKind;
    if (only !== undefined && kind !== only) {
      report.other_kind++;
      continue;
    }
    batch.push({ kind, name: row.name, bucket: row.bucket, assignedAt: row.assignedAt });
    if (batch.length >= batchSize) await flush();
  }
  await flush();
  // Overwritten objects may be cached with their old bucket.
  for (const kind of touched) ctx.changed?.(kind, null);
  ctx.log?.info(
    {
      event: 'imported',
      source,
      inserted: report.inserted,
      unchanged: report.unchanged,
      overwritten: report.overwritten,
      conflicts: report.conflict_count,
      actor: opts.actor,
    },
    'import finished',
  );
  return report;
}

/** Lines of a file with their 1-based numbers; blank lines skipped, a BOM dropped. */
async function* fileLines(path: string): AsyncGenerator<{ n: number; line: string }> {
  const rl = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let n = 0;
  for await (const raw of rl) {
    n++;
    const line = n === 1 && raw.startsWith('\uFEFF') ? raw.slice(1) : raw;
    if (line.trim() === '') continue;
    yield { n, line };
  }
}

async function firstLine(path: string): Promise<string | undefined> {
  for await (const { line } of fileLines(path)) return line;
  return undefined;
}

export async function importFile(
  ctx: OpsContext,
  path: string,
  opts: ImportOptions & { format?: Format | undefined; source?: string | undefined },
): Promise<ImportReport> {
  const source = opts.source ?? basename(path);
  if (opts.kind !== undefined) await knownKind(ctx, opts.kind);
  const format = detectFormat(opts.format, opts.source === undefined ? path : undefined, await firstLine(path));
  async function* items(): AsyncGenerator<SourceItem> {
    let cols: Map<string, number> | undefined;
    for await (const { n, line } of fileLines(path)) {
      const at = `line ${n}`;
      if (format === 'jsonl') {
        yield { at, row: jsonlRow(line) };
      } else if (cols === undefined) {
        const h = csvHeader(line);
        if (typeof h === 'string') {
          yield { at, row: h };
          return;
        }
        cols = h;
      } else {
        yield { at, row: csvRow(line, cols) };
      }
    }
  }
  return importItems(ctx, source, format, items, opts);
}

export interface StreamImportOptions extends ImportOptions {
  format?: Format | undefined;
  /** How the input is named in the report and in errors (`standard input`, `request body`). */
  source: string;
  /** Refuse an input longer than this many bytes (PayloadTooLargeError). */
  maxBytes?: number | undefined;
}

/**
 * Imports from a stream. An import reads its input twice (check, then import), so the stream is
 * spooled to a private temporary file first, removed afterwards.
 */
export async function importStream(
  ctx: OpsContext,
  input: NodeJS.ReadableStream,
  opts: StreamImportOptions,
): Promise<ImportReport> {
  const dir = await mkdtemp(join(tmpdir(), 'sharder-import-'));
  try {
    const file = join(dir, 'input');
    const max = opts.maxBytes;
    let size = 0;
    const limit = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        size += chunk.length;
        cb(
          max !== undefined && size > max
            ? new PayloadTooLargeError(`an import body may be at most ${max} bytes`)
            : null,
          chunk,
        );
      },
    });
    await pipeline(input, limit, createWriteStream(file, { mode: 0o600 }));
    return await importFile(ctx, file, opts);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Imports the original Python sharder's `shard` table (SQLite file or PostgreSQL URL). */
export async function importOriginal(ctx: OpsContext, src: OriginalSource, opts: ImportOptions): Promise<ImportReport> {
  if (opts.kind !== undefined) await knownKind(ctx, opts.kind);
  const source = describeOriginal(src);
  async function* items(): AsyncGenerator<SourceItem | 'placeholder'> {
    for await (const r of readOriginal(src)) {
      const at = `row id ${r.id}`;
      if (isPlaceholder(r)) yield 'placeholder';
      else if (r.name === null || r.bucket === null || r.kind === null)
        yield { at, row: `has an empty ${r.name === null ? 'name' : r.bucket === null ? 'bucket' : 'kind'}` };
      else yield { at, row: { kind: r.kind, name: r.name, bucket: r.bucket, assignedAt: undefined } };
    }
  }
  return importItems(ctx, source, 'original', items, opts);
}
