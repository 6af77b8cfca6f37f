/**
 * Export and import formats: CSV (RFC 4180, with a header line) and JSON lines. Pure
 * functions of one line, so export streams and import reads line by line in bounded memory.
 *
 * CSV: `kind,name,bucket,assigned_at`; a field is quoted when it holds `,`, `"`, or white
 * space at either end, with `"` doubled inside. Names never contain line breaks (they are
 * refused as identities), so a record is always one line.
 * JSON lines: `{"kind":…,"name":…,"bucket":…,"assigned_at":…}` per line.
 * `assigned_at` is ISO 8601 in UTC with milliseconds, so an export re-imported and exported
 * again is byte for byte the same.
 */
import type { Assignment } from '../store/types.js';

export type Format = 'csv' | 'jsonl';
export const FORMATS: readonly Format[] = ['csv', 'jsonl'];

export const CSV_COLUMNS = ['kind', 'name', 'bucket', 'assigned_at'] as const;
export const CSV_HEADER = `${CSV_COLUMNS.join(',')}\n`;

function csvField(v: string): string {
  return /[",\r\n]|^\s|\s$/.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
}

export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

/** One exported line, with its newline. */
export function formatRow(format: Format, a: Assignment): string {
  if (format === 'jsonl')
    return `${JSON.stringify({ kind: a.kind, name: a.name, bucket: a.bucket, assigned_at: isoTime(a.assignedAt) })}\n`;
  return `${csvField(a.kind)},${csvField(a.name)},${csvField(a.bucket)},${isoTime(a.assignedAt)}\n`;
}

/** Splits one CSV line into fields; returns an error text for malformed quoting. */
export function parseCsvLine(line: string): string[] | string {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let v = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q === -1) return 'a quoted field is not closed (a field cannot span lines)';
        v += line.slice(i, q);
        if (line[q + 1] === '"') {
          v += '"';
          i = q + 2;
        } else {
          i = q + 1;
          break;
        }
      }
      out.push(v);
      if (i === line.length) return out;
      if (line[i] !== ',') return `unexpected character after a quoted field at column ${i + 1}`;
      i++;
    } else {
      const c = line.indexOf(',', i);
      const v = c === -1 ? line.slice(i) : line.slice(i, c);
      if (v.includes('"')) return `a field containing '"' must be quoted, at column ${i + 1}`;
      out.push(v);
      if (c === -1) return out;
      i = c + 1;
    }
  }
}

/** A row as read from an import file, before checking it against the configuration. */
export interface RawRow {
  kind: string | undefined;
  name: string;
  bucket: string;
  /** Unix ms, or undefined when the input has none. */
  assignedAt: number | undefined;
}

export function parseTime(v: unknown): number | string {
  if (typeof v === 'number')
    return Number.isSafeInteger(v) && v >= 0
      ? v
      : `assigned_at must be an ISO 8601 time or unix milliseconds, got ${v}`;
  if (typeof v !== 'string' || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})$/.test(v)) {
    return (
      'assigned_at must be an ISO 8601 time with a zone, such as 2024-01-31T12:00:00.000Z, got ' +
      `${JSON.stringify(v)}`
    );
  }
  const ms = Date.parse(v);
  return Number.isNaN(ms) ? `assigned_at is not a valid time: ${JSON.stringify(v)}` : ms;
}

/** Reads the CSV header: which column holds what. */
export function csvHeader(line: string): Map<string, number> | string {
  const fields = parseCsvLine(line);
  if (typeof fields === 'string') return fields;
  const cols = new Map<string, number>();
  for (const [i, f] of fields.entries()) {
    const name = f.trim().toLowerCase();
    if (!(CSV_COLUMNS as readonly string[]).includes(name))
      return `the header names an unknown column "${f}" (known: ${CSV_COLUMNS.join(', ')})`;
    if (cols.has(name)) return `the header names column "${name}" twice`;
    cols.set(name, i);
  }
  if (!cols.has('name') || !cols.has('bucket'))
    return (
      'the first line must be a header naming at least the columns name and bucket (e.g. ' + `${CSV_COLUMNS.join(',')})`
    );
  return cols;
}

export function csvRow(line: string, cols: ReadonlyMap<string, number>): RawRow | string {
  const fields = parseCsvLine(line);
  if (typeof fields === 'string') return fields;
  if (fields.length !== cols.size)
    return `has ${fields.length} field${fields.length === 1 ? '' : 's'}, the header ${cols.size}`;
  const get = (c: string): string | undefined => (cols.has(c) ? fields[cols.get(c)!] : undefined);
  const t = get('assigned_at');
  const at = t === undefined || t === '' ? undefined : parseTime(t);
  if (typeof at === 'string') return at;
  const kind = get('kind');
  return { kind: kind === '' ? undefined : kind, name: get('name')!, bucket: get('bucket')!, assignedAt: at };
}

const JSONL_KEYS = new Set(['kind', 'name', 'bucket', 'assigned_at']);

export function jsonlRow(line: string): RawRow | string {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch (err) {
    return `not valid JSON (${(err as Error).message})`;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    return 'must be a JSON object {"kind","name","bucket","assigned_at"}';
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (!JSONL_KEYS.has(k)) return `unknown key "${k}" (known: ${[...JSONL_KEYS].join(', ')})`;
  if (typeof o.name !== 'string') return 'name must be a string';
  if (typeof o.bucket !== 'string') return 'bucket must be a string';
  if (o.kind !== undefined && o.kind !== null && typeof o.kind !== 'string') return 'kind must be a string';
  const at = o.assigned_at === undefined || o.assigned_at === null ? undefined : parseTime(o.assigned_at);
  if (typeof at === 'string') return at;
  return { kind: o.kind ?? undefined, name: o.name, bucket: o.bucket, assignedAt: at };
}

/** Chooses the format from an explicit choice, the file name, or the first line. */
export function detectFormat(
  explicit: Format | undefined,
  fileName: string | undefined,
  firstLine: string | undefined,
): Format {
  if (explicit) return explicit;
  if (fileName && /\.csv$/i.test(fileName)) return 'csv';
  if (fileName && /\.(jsonl|ndjson|json)$/i.test(fileName)) return 'jsonl';
  return firstLine?.trimStart().startsWith('{') ? 'jsonl' : 'csv';
}
