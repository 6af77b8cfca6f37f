/**
 * The admin REST API: the operations module (src/ops) over HTTP, JSON in and out, on the
 * control listener. The routes and their parameters come from the operations' descriptions
 * (src/ops/operations.ts); what is HTTP's own (streamed export and import bodies, the plan of a
 * dry run) is written here. Every route is documented in README.md ("Admin REST API").
 */
import type { ServerResponse } from 'node:http';
import { BadInputError, PayloadTooLargeError } from '../errors.js';
import type { Operations } from '../ops/index.js';
import { OPERATIONS, exportOp, importOp, migrate } from '../ops/operations.js';
import { type AnyOperation, type Param, type RequestOf, buildRequest } from '../ops/spec.js';
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

/** The JSON body or the query parameters, refusing names the operation does not know. */
async function rawInput(op: AnyOperation, c: RouteContext, known: readonly string[]): Promise<Body> {
  if (op.api!.from === 'body') {
    const body = await readJson(c.req);
    for (const k of Object.keys(body))
      if (!known.includes(k)) throw new BadInputError(`unknown field "${k}" (known: ${known.join(', ')})`);
    return body;
  }
  const out: Body = {};
  for (const [k, v] of c.query) {
    if (!known.includes(k)) throw new BadInputError(`unknown query parameter "${k}" (known: ${known.join(', ')})`);
    if (k in out) throw new BadInputError(`query parameter "${k}" is given twice`);
    out[k] = v;
  }
  return out;
}

/** The operation's request from the path, the body or query, and the caller. */
async function apiRequest<Req>(op: AnyOperation, c: RouteContext): Promise<Req> {
  const inPath = op.params.filter((p) => p.api === 'path');
  const inRequest = op.params.filter((p) => p.api === undefined);
  const raw = await rawInput(
    op,
    c,
    inRequest.map((p) => p.name),
  );
  const req = buildRequest(
    inRequest,
    op.api!.from,
    (p: Param) => raw[p.name],
    (_p, where) => {
      throw new BadInputError(`${where} is required`);
    },
  );
  for (const p of inPath) req[p.key] = c.params[p.name];
  return { ...req, actor: c.actor } as Req;
}

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

/** Answers of the operations whose HTTP form is more than a JSON result. */
type Answer<Req> = (c: RouteContext, req: Req, ops: Operations) => Promise<void>;

function answer<O extends AnyOperation>(op: O, fn: Answer<RequestOf<O>>): [AnyOperation, Answer<never>] {
  return [op, fn];
}

const ANSWERS = new Map<AnyOperation, Answer<never>>([
  // A dry run's answer lists its plan (up to MAX_PLAN_ITEMS moves).
  answer(migrate, async (c, req, ops) => {
    const plan: { name: string; to: string }[] = [];
    const dryRun = req.dryRun === true;
    const r = await migrate.run(ops, {
      ...req,
      dryRun,
      onBatch: (batch) => {
        if (dryRun) for (const p of batch.planned) if (plan.length < MAX_PLAN_ITEMS) plan.push(p);
      },
    });
    sendJson(c.res, 200, dryRun ? { ...r, plan, plan_truncated: r.planned > plan.length } : r);
  }),

  answer(exportOp, async (c, req, ops) => {
    const format = req.format ?? 'csv';
    const lines = exportOp.run(ops, req)[Symbol.asyncIterator]();
    // The first line is read before answering, so a bad kind is still a JSON 4xx.
    let next = await lines.next();
    c.res.writeHead(200, {
      'Content-Type': format === 'csv' ? 'text/csv; charset=utf-8' : 'application/jsonl; charset=utf-8',
      'Content-Disposition': `attachment; filename="sharder-${req.kind ?? 'all'}.${format}"`,
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
  }),

  // The body is the input; without ?format= its content type names the format.
  answer(importOp, async (c, req, ops) => {
    const type = c.req.headers['content-type'] ?? '';
    const format =
      req.format ??
      (/^text\/csv/i.test(type) ? 'csv' : /^application\/(jsonl|x-ndjson|ndjson)/i.test(type) ? 'jsonl' : undefined);
    if (Number(c.req.headers['content-length'] ?? 0) > MAX_IMPORT_BYTES) {
      c.req.resume();
      throw new PayloadTooLargeError(
        `an import body may be at most ${MAX_IMPORT_BYTES} bytes: import larger files with the CLI`,
      );
    }
    sendJson(
      c.res,
      200,
      await importOp.run(ops, { ...req, format, input: c.req, source: 'request body', maxBytes: MAX_IMPORT_BYTES }),
    );
  }),
]);

/** Registers every /api/ route; `ops()` gives the operations in force. */
export function registerAdminApi(router: ControlRouter, ops: () => Operations): void {
  for (const op of OPERATIONS) {
    const route = op.api;
    if (route === undefined) continue;
    const special = ANSWERS.get(op);
    router.add(route.method, route.path, async (c) => {
      const req = await apiRequest<never>(op, c);
      if (special) return special(c, req, ops());
      const r: unknown = await op.run(ops(), req);
      sendJson(c.res, route.status?.(r) ?? 200, r);
    });
  }
}
