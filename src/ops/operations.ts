/**
 * Every admin operation, described once (see spec.ts): the API routes, the CLI commands'
 * options and usage text and the CLI reference are derived from this table. Adding an
 * operation means a method on Operations, a row here, and (for the CLI) a command that says
 * how to print its result.
 */
import { AUDIT_ACTIONS } from '../store/types.js';
import type { Format } from './format.js';
import { FORMATS } from './format.js';
import { DEFAULT_STOP_TIMEOUT_MS } from './hub-api.js';
import {
  DEFAULT_BATCH_PAUSE_MS,
  DEFAULT_BATCH_SIZE,
  MAX_BATCH_PAUSE_MS,
  MAX_BATCH_SIZE,
  type MigrateRequest,
} from './migrate.js';
import {
  AUDIT_DEFAULT_LIMIT,
  AUDIT_MAX_LIMIT,
  type AuditRequest,
  type ListQuery,
  type PutView,
  type SafetyRequest,
} from './objects.js';
import { type OriginalSource, parseOriginalUrl } from './original.js';
import { type ParamType, bool, choice, text, whole } from './params.js';
import { type AnyOperation, type Param, operation } from './spec.js';

const kind = (doc = 'kind of object (default: default_kind from the configuration)', api?: 'path'): Param => ({
  key: 'kind',
  name: 'kind',
  type: text,
  doc,
  cli: { short: 'k', arg: 'KIND' },
  ...(api ? { api } : {}),
});
/** The kind, as most operations take it (also the CLI's nginx-config). */
export const KIND = kind();
/** The object an operation is about: in the API's path, the CLI's one argument. */
const NAME: Param = {
  key: 'name',
  name: 'name',
  type: text,
  doc: "the object's name",
  required: true,
  api: 'path',
  cli: { positional: 'NAME' },
};
const REASON: Param = {
  key: 'reason',
  name: 'reason',
  type: text,
  doc: 'why, for the audit log',
  cli: { short: 'r', arg: 'TEXT' },
};
/** The safety flags are long: their usage lines align further out. */
const SAFETY_COLUMN = 28;
/**
 * Whether and how the old hub is asked about running servers before an object leaves it (in
 * the order the API lists known fields; the CLI's usage lists the timeout second).
 */
const SAFETY: readonly Param[] = [
  {
    key: 'stopServers',
    name: 'stop_servers',
    type: bool,
    default: false,
    doc: "stop the user's servers on the old hub (and wait) instead of refusing",
    cli: { column: SAFETY_COLUMN },
  },
  {
    key: 'skipHubCheck',
    name: 'skip_hub_check',
    type: bool,
    default: false,
    doc: 'do not ask the old hub (its hub_api) about running servers at all',
    cli: { column: SAFETY_COLUMN },
  },
  {
    key: 'stopTimeoutMs',
    name: 'stop_timeout',
    type: whole({ doc: 'whole number of seconds', scale: 1000 }),
    default: DEFAULT_STOP_TIMEOUT_MS / 1000,
    doc: `how long to wait for a server to stop (default ${DEFAULT_STOP_TIMEOUT_MS / 1000})`,
    cli: { arg: 'SECS', column: SAFETY_COLUMN },
  },
];
const SAFETY_EXCLUSIVE = [['stopServers', 'skipHubCheck']] as const;
const FORMAT = (doc: string): Param => ({
  key: 'format',
  name: 'format',
  type: choice(FORMATS),
  doc,
  cli: { short: 'f', arg: 'F' },
});
const OVERWRITE = (what: string): Param => ({
  key: 'overwrite',
  name: 'overwrite',
  type: bool,
  default: false,
  doc: `put objects that are stored on another bucket on the ${what}'s bucket`,
});
const IMPORT_KIND = kind(
  'import only rows of this kind (rows without a kind count as it); default: all rows, rows without a kind as ' +
    'default_kind',
);
const LIMIT = (doc: string): Param => ({
  key: 'limit',
  name: 'limit',
  type: whole({ doc: 'whole number' }),
  doc,
  cli: { arg: 'N' },
});
const CURSOR: Param = {
  key: 'cursor',
  name: 'cursor',
  type: text,
  doc: 'the page after the one that printed "next cursor: C"',
  cli: { arg: 'C' },
};

type Named = { kind?: string | undefined; name: string };

export const assign = operation<Named & { bucket?: string | undefined }>()({
  name: 'assign',
  params: [
    kind(),
    NAME,
    {
      key: 'bucket',
      name: 'bucket',
      type: text,
      doc: 'assign to bucket B instead of by the policy (audited; refused if NAME has another bucket)',
      cli: { name: 'to', short: 't', arg: 'B' },
    },
    REASON,
  ],
  async run(ops, req) {
    if (req.bucket === undefined) return ops.assignByPolicy(req);
    const r = await ops.assign({ ...req, bucket: req.bucket });
    return { kind: r.kind, name: r.name, bucket: r.to!, created: r.changed };
  },
});

export const find = operation<Named>()({
  name: 'find',
  params: [kind(undefined, 'path'), NAME],
  api: { method: 'GET', path: '/api/objects/:kind/:name', from: 'query' },
  run: (ops, req) => ops.find(req.kind, req.name),
});

export const list = operation<ListQuery>()({
  name: 'list',
  params: [
    kind(),
    { key: 'bucket', name: 'bucket', type: text, doc: 'only the objects on bucket B', cli: { short: 'b', arg: 'B' } },
    LIMIT('one page of at most N objects (default: all, streamed)'),
    CURSOR,
  ],
  api: { method: 'GET', path: '/api/objects', from: 'query' },
  run: (ops, req) => ops.list(req),
});

/** Moves when the object has a bucket, assigns explicitly when not (201). */
export const put = operation<Named & { bucket: string } & SafetyRequest>()({
  name: 'put',
  params: [
    kind(undefined, 'path'),
    NAME,
    { key: 'bucket', name: 'bucket', type: text, required: true, doc: 'the bucket to put it on' },
    REASON,
    ...SAFETY,
  ],
  api: {
    method: 'PUT',
    path: '/api/objects/:kind/:name',
    from: 'body',
    status: (r: PutView) => (r.action === 'assign' ? 201 : 200),
  },
  run: (ops, req) => ops.put(req),
});

export const move = operation<Named & { to: string } & SafetyRequest>()({
  name: 'move',
  params: [
    kind(),
    NAME,
    {
      key: 'to',
      name: 'bucket',
      type: text,
      required: true,
      doc: 'the bucket to move to (must be in the configuration)',
      cli: { name: 'to', short: 't', arg: 'B' },
    },
    REASON,
    ...SAFETY,
  ],
  exclusive: SAFETY_EXCLUSIVE,
  run: (ops, req) => ops.move(req),
});

export const remove = operation<Named & SafetyRequest>()({
  name: 'delete',
  params: [kind(undefined, 'path'), NAME, REASON, ...SAFETY],
  exclusive: SAFETY_EXCLUSIVE,
  api: { method: 'DELETE', path: '/api/objects/:kind/:name', from: 'query' },
  run: (ops, req) => ops.delete(req),
});

export const buckets = operation<{ kind?: string | undefined }>()({
  name: 'buckets',
  params: [kind()],
  api: { method: 'GET', path: '/api/buckets', from: 'query' },
  run: (ops, req) => ops.buckets(req.kind),
});

export const migrate = operation<Omit<MigrateRequest, 'actor'>>()({
  name: 'migrate',
  params: [
    kind(),
    {
      key: 'from',
      name: 'from',
      type: text,
      required: true,
      doc: 'the bucket to empty',
      cli: { positional: 'bucket FROM' },
    },
    {
      key: 'to',
      name: 'to',
      type: text,
      doc: 'move everything to bucket B (default: spread by the policy over the other active buckets)',
      cli: { short: 't', arg: 'B' },
    },
    {
      key: 'dryRun',
      name: 'dry_run',
      type: bool,
      default: false,
      doc: 'print the plan (BUCKET NAME per object, then totals) and change nothing',
      cli: { short: 'n' },
    },
    {
      key: 'batchSize',
      name: 'batch_size',
      type: whole({ doc: `whole number, 1 to ${MAX_BATCH_SIZE}` }),
      default: DEFAULT_BATCH_SIZE,
      doc: `objects per transaction (default ${DEFAULT_BATCH_SIZE}); an interrupted migration resumes when run again`,
      cli: { arg: 'N' },
    },
    {
      key: 'pauseMs',
      name: 'pause_ms',
      type: whole({
        doc: `whole number of milliseconds, 0 to ${MAX_BATCH_PAUSE_MS}`,
        flag: { digits: 6, min: 0, expect: 'a whole number of milliseconds' },
      }),
      default: DEFAULT_BATCH_PAUSE_MS,
      doc:
        'milliseconds between batches, so running servers get the write lock for new users (default ' +
        `${DEFAULT_BATCH_PAUSE_MS})`,
      cli: { name: 'pause', arg: 'MS' },
    },
    REASON,
    ...SAFETY,
  ],
  exclusive: SAFETY_EXCLUSIVE,
  api: { method: 'POST', path: '/api/migrations', from: 'body' },
  run: (ops, req) => ops.migrate(req),
});

export const exportOp = operation<{ kind?: string | undefined; format?: Format | undefined }>()({
  name: 'export',
  params: [
    kind('only objects of this kind (default: every kind)'),
    FORMAT('csv (default: kind,name,bucket,assigned_at with a header) or jsonl'),
  ],
  api: { method: 'GET', path: '/api/export', from: 'query' },
  run: (ops, req) => ops.export({ kind: req.kind, format: req.format ?? 'csv' }),
});

export interface ImportRequest {
  kind?: string | undefined;
  format?: Format | undefined;
  overwrite?: boolean | undefined;
  reason?: string | undefined;
  /** A file to read, or `input` (a stream, spooled first) named `source`. */
  file?: string | undefined;
  input?: NodeJS.ReadableStream | undefined;
  source?: string | undefined;
  /** Longest `input` accepted, in bytes. */
  maxBytes?: number | undefined;
}

export const importOp = operation<ImportRequest>()({
  name: 'import',
  params: [
    IMPORT_KIND,
    {
      key: 'file',
      name: 'file',
      type: text,
      required: true,
      doc: 'the file to import, or - for standard input',
      api: false,
      cli: { positional: 'FILE (or - for standard input)' },
    },
    FORMAT('csv or jsonl (default: from the file name, else from the first line)'),
    OVERWRITE('file'),
    REASON,
  ],
  api: { method: 'POST', path: '/api/import', from: 'query' },
  run(ops, req) {
    if (req.input !== undefined) return ops.importStream(req.input, { ...req, source: req.source ?? 'input' });
    return ops.importFile(req.file!, req);
  },
});

/** The original sharder's database, parsed when the request is read (before any store is opened). */
const originalSource: ParamType<OriginalSource> = {
  doc: 'database URL or file path',
  parse: (raw, where) => parseOriginalUrl(text.parse(raw, where)),
};

export const importOriginal = operation<{
  original: OriginalSource;
  kind?: string | undefined;
  overwrite?: boolean | undefined;
  reason?: string | undefined;
}>()({
  name: 'import-original',
  params: [
    {
      key: 'original',
      name: 'url',
      type: originalSource,
      required: true,
      doc: "the original's database URL",
      cli: { positional: 'URL' },
    },
    IMPORT_KIND,
    OVERWRITE('original'),
    REASON,
  ],
  api: { method: 'POST', path: '/api/import-original', from: 'body' },
  run: (ops, req) => ops.importOriginal(req.original, req),
});

const DOCTOR_KIND = kind('check only this kind (default: every kind, configured or stored)');

export const doctor = operation<{ kind?: string | undefined }>()({
  name: 'doctor',
  params: [DOCTOR_KIND],
  api: { method: 'GET', path: '/api/doctor', from: 'query' },
  run: (ops, req) => ops.doctor(req.kind),
});

export const repair = operation<{ kind?: string | undefined }>()({
  name: 'repair',
  params: [DOCTOR_KIND, REASON],
  api: { method: 'POST', path: '/api/doctor/repair', from: 'body' },
  run: (ops, req) => ops.repair(req, req.kind),
});

export const audit = operation<Omit<AuditRequest, 'since'> & { since?: string | undefined }>()({
  name: 'audit',
  params: [
    kind('only entries of this kind (default: every kind)'),
    { key: 'name', name: 'name', type: text, doc: 'only entries about this object', cli: { arg: 'NAME' } },
    {
      key: 'action',
      name: 'action',
      type: text,
      doc: `${AUDIT_ACTIONS.slice(0, -1).join(', ')} or ${AUDIT_ACTIONS.at(-1)}`,
      cli: { arg: 'A' },
    },
    {
      key: 'batch',
      name: 'batch',
      type: text,
      doc: 'one migration or import batch (as printed by migrate)',
      cli: { arg: 'ID' },
    },
    {
      key: 'since',
      name: 'since',
      type: text,
      doc: 'only entries at or after TIME (ISO 8601, e.g. 2024-05-01 or 2024-05-01T12:00:00Z)',
      cli: { arg: 'TIME' },
    },
    LIMIT(`entries per page (default ${AUDIT_DEFAULT_LIMIT}, at most ${AUDIT_MAX_LIMIT})`),
    CURSOR,
  ],
  api: { method: 'GET', path: '/api/audit', from: 'query' },
  run: (ops, req) => ops.audit(req),
});

export const backup = operation<{ target: string; force?: boolean | undefined }>()({
  name: 'backup',
  store: false,
  params: [
    {
      key: 'target',
      name: 'target',
      type: text,
      required: true,
      doc: 'the backup file to write',
      api: false,
      cli: { positional: 'FILE to write the backup to' },
    },
    { key: 'force', name: 'force', type: bool, default: false, doc: 'replace FILE if it exists', cli: { short: 'f' } },
  ],
  run: (ops, req) => ops.backup(req),
});

/** Every operation; the API registers a route for each that has one, in this order. */
export const OPERATIONS: readonly AnyOperation[] = [
  list,
  find,
  put,
  remove,
  buckets,
  migrate,
  exportOp,
  importOp,
  importOriginal,
  doctor,
  repair,
  audit,
  assign,
  move,
  backup,
];
