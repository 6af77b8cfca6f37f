/**
 * The admin REST API: the operations module (src/ops) over HTTP, JSON in and out, on the
 * control listener. Every route is documented in README.md ("Admin REST API").
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ServerResponse } from 'node:http';
import { BadInputError, NotFoundError, PayloadTooLargeError } from '../errors.js';
import type { Operations} from '../ops/index.js';
import { FORMATS, type Format, parseOriginalUrl } from '../ops/index.js';
import type { ControlRouter, RouteContext } from './control.js';
import { readJson } from './control.js';
import { sendJson } from './respond.js';

/** Largest import body accepted (it is spooled to a temporary file, not held in memory). */
export const MAX_IMPORT_BYTES = 1024 * 1024 * 1024;
/** Planned moves listed in a dry-run answer (all are counted). */
export const MAX_PLAN_ITEMS = 10_000;
/** Export responses are written in chunks of about this many bytes. */
const EXPORT_CHUNK_BYTES = 64 * 1024;

type Body = Record<string, unknown>;

function only(body: Body, known: readonly string[]): void {
  for (const k of Object.keys(body)) if (!known.includes(k)) throw new BadInputError(`unknown field "${k}" (known: ${known.join(', ')})`);
}

function str(body: Body, key: string, required: true): string;
function str(body: Body, key: string, required?: false): string | undefined;
function str(body: Body, key: string, required = false): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) {
    if (required) throw new BadInputError(`field "${key}" is required`);
    return undefined;
  }
  if (typeof v !== 'string' || v === '') throw new BadInputError(`field "${key}" must be a non-empty string`);
  return v;
}

function bool(body: Body, key: string): boolean | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new BadInputError(`field "${key}" must be true or false`);
  return v;
}

function num(body: Body, key: string): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new BadInputError(`field "${key}" must be a non-negative number`);
  return v;
}

/** Query parameters as a body, for the same checks. */
function queryBody(c: RouteContext, known: readonly string[]): Body {
  const out: Body = {};
  for (const [k, v] of c.query) {
    if (!known.includes(k)) throw new BadInputError(`unknown query parameter "${k}" (known: ${known.join(', ')})`);
    if (k in out) throw new BadInputError(`query parameter "${k}" is given twice`);
    out[k] = v;
  }
  return out;
}

function qInt(q: Body, key: string): number | undefined {
  const v = q[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^\d{1,9}$/.test(v)) throw new BadInputError(`query parameter "${key}" must be a whole number`);
  return Number(v);
}

function qBool(q: Body, key: string): boolean | undefined {
  const v = q[key];
  if (v === undefined) return undefined;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new BadInputError(`query parameter "${key}" must be true or false`);
}

function qFormat(v: unknown): Format | undefined {
  if (v === undefined) return undefined;
  if (!FORMATS.includes(v as Format)) throw new BadInputError(`format must be one of ${FORMATS.join(', ')}`);
  return v as Format;
}

const stopTimeoutMs = (b: Body): number | undefined => {
  const s = num(b, 'stop_timeout');
  return s === undefined ? undefined : s * 1000;
};

/** Writes a chunk, waiting while the client's buffer is full; false when the client left. */
async function write(res: ServerResponse, chunk: string): Promise<boolean> {
  if (res.destroyed) return false;
  if (!res.write(chunk)) {
    await new Promise<void>((resolve) => {
      const done = (): void => {
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.once('drain', done);
      res.once('close', done);
    });
  }
  return !res.destroyed;
}

const SAFETY_FIELDS = ['stop_servers', 'skip_hub_check', 'stop_timeout'];

/** Registers every /api/ route; `ops()` gives the operations in force. */
export function registerAdminApi(router: ControlRouter, ops: () => Operations): void {
  router.add('GET', '/api/objects', async (c) => {
    const q = queryBody(c, ['kind', 'bucket', 'limit', 'cursor']);
    sendJson(c.res, 200, await ops().list({ kind: q.kind as string | undefined, bucket: q.bucket as string | undefined, cursor: q.cursor as string | undefined, limit: qInt(q, 'limit') }));
  });

  router.add('GET', '/api/objects/:kind/:name', async (c) => {
    queryBody(c, []);
    sendJson(c.res, 200, await ops().find(c.params.kind, c.params.name!));
  });

  // Puts the object on a bucket: moves it when it has one, assigns it explicitly when not.
  router.add('PUT', '/api/objects/:kind/:name', async (c) => {
    const b = await readJson(c.req);
    only(b, ['bucket', 'reason', ...SAFETY_FIELDS]);
    const bucket = str(b, 'bucket', true);
    const common = { kind: c.params.kind, name: c.params.name!, actor: c.actor, reason: str(b, 'reason') };
    const o = ops();
    try {
      const r = await o.move({ ...common, to: bucket, stopServers: bool(b, 'stop_servers'), skipHubCheck: bool(b, 'skip_hub_check'), stopTimeoutMs: stopTimeoutMs(b) });
      sendJson(c.res, 200, { ...r, action: r.changed ? 'move' : 'none' });
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
      const r = await o.assign({ ...common, bucket });
      sendJson(c.res, r.changed ? 201 : 200, { ...r, action: r.changed ? 'assign' : 'none' });
    }
  });

  router.add('DELETE', '/api/objects/:kind/:name', async (c) => {
    const q = queryBody(c, ['reason', ...SAFETY_FIELDS]);
    const t = qInt(q, 'stop_timeout');
    sendJson(c.res, 200, await ops().delete({
      kind: c.params.kind, name: c.params.name!, actor: c.actor, reason: q.reason as string | undefined,
      stopServers: qBool(q, 'stop_servers'), skipHubCheck: qBool(q, 'skip_hub_check'), stopTimeoutMs: t === undefined ? undefined : t * 1000,
    }));
  });

  router.add('GET', '/api/buckets', async (c) => {
    const q = queryBody(c, ['kind']);
    sendJson(c.res, 200, await ops().buckets(q.kind as string | undefined));
  });

  router.add('POST', '/api/migrations', async (c) => {
    const b = await readJson(c.req);
    only(b, ['kind', 'from', 'to', 'dry_run', 'batch_size', 'pause_ms', 'reason', ...SAFETY_FIELDS]);
    const plan: { name: string; to: string }[] = [];
    const dryRun = bool(b, 'dry_run') ?? false;
    const r = await ops().migrate({
      kind: str(b, 'kind'), from: str(b, 'from', true), to: str(b, 'to'), dryRun, batchSize: num(b, 'batch_size'), pauseMs: num(b, 'pause_ms'),
      actor: c.actor, reason: str(b, 'reason'), stopServers: bool(b, 'stop_servers'), skipHubCheck: bool(b, 'skip_hub_check'), stopTimeoutMs: stopTimeoutMs(b),
      onBatch: (batch) => {
        if (dryRun) for (const p of batch.planned) if (plan.length < MAX_PLAN_ITEMS) plan.push(p);
      },
    });
    sendJson(c.res, 200, dryRun ? { ...r, plan, plan_truncated: r.planned > plan.length } : r);
  });

  router.add('GET', '/api/export', async (c) => {
    const q = queryBody(c, ['kind', 'format']);
    const format = qFormat(q.format) ?? 'csv';
    const lines = ops().export({ kind: q.kind as string | undefined, format })[Symbol.asyncIterator]();
    // The first line is read before answering, so a bad kind is still a JSON 4xx.
    let next = await lines.next();
    c.res.writeHead(200, {
      'Content-Type': format === 'csv' ? 'text/csv; charset=utf-8' : 'application/jsonl; charset=utf-8',
      'Content-Disposition': `attachment; filename="sharder-${(q.kind as string | undefined) ?? 'all'}.${format}"`,
      'Cache-Control': 'no-store',
    });
    let chunk = '';
    while (!next.done) {
      chunk += next.value;
      if (chunk.length >= EXPORT_CHUNK_BYTES) {
        if (!(await write(c.res, chunk))) return void (await lines.return?.(undefined));
        chunk = '';
      }
      next = await lines.next();
    }
    c.res.end(chunk);
  });

  router.add('POST', '/api/import', async (c) => {
    const q = queryBody(c, ['kind', 'format', 'overwrite', 'reason']);
    const type = c.req.headers['content-type'] ?? '';
    const format = qFormat(q.format) ?? (/^text\/csv/i.test(type) ? 'csv' : /^application\/(jsonl|x-ndjson|ndjson)/i.test(type) ? 'jsonl' : undefined);
    if (Number(c.req.headers['content-length'] ?? 0) > MAX_IMPORT_BYTES) {
      c.req.resume();
      throw new PayloadTooLargeError(`an import body may be at most ${MAX_IMPORT_BYTES} bytes: import larger files with the CLI`);
    }
    const dir = await mkdtemp(join(tmpdir(), 'sharder-import-'));
    try {
      const file = join(dir, 'body');
      let size = 0;
      const limit = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          size += chunk.length;
          cb(size > MAX_IMPORT_BYTES ? new PayloadTooLargeError(`an import body may be at most ${MAX_IMPORT_BYTES} bytes`) : null, chunk);
        },
      });
      await pipeline(c.req, limit, createWriteStream(file, { mode: 0o600 }));
      const report = await ops().importFile(file, {
        source: 'request body', format, kind: q.kind as string | undefined, overwrite: qBool(q, 'overwrite'), actor: c.actor, reason: q.reason as string | undefined,
      });
      sendJson(c.res, 200, report);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  router.add('POST', '/api/import-original', async (c) => {
    const b = await readJson(c.req);
    only(b, ['url', 'kind', 'overwrite', 'reason']);
    const src = parseOriginalUrl(str(b, 'url', true));
    sendJson(c.res, 200, await ops().importOriginal(src, { kind: str(b, 'kind'), overwrite: bool(b, 'overwrite'), actor: c.actor, reason: str(b, 'reason') }));
  });

  router.add('GET', '/api/doctor', async (c) => {
    const q = queryBody(c, ['kind']);
    sendJson(c.res, 200, await ops().doctor(q.kind as string | undefined));
  });

  router.add('POST', '/api/doctor/repair', async (c) => {
    const b = await readJson(c.req);
    only(b, ['kind', 'reason']);
    sendJson(c.res, 200, await ops().repair({ actor: c.actor, reason: str(b, 'reason') }, str(b, 'kind')));
  });

  router.add('GET', '/api/audit', async (c) => {
    const q = queryBody(c, ['kind', 'name', 'action', 'batch', 'since', 'limit', 'cursor']);
    sendJson(c.res, 200, await ops().audit({
      kind: q.kind as string | undefined, name: q.name as string | undefined, action: q.action as string | undefined, batch: q.batch as string | undefined,
      since: q.since as string | undefined, cursor: q.cursor as string | undefined, limit: qInt(q, 'limit'),
    }));
  });
}
