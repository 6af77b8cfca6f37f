/**
 * The control listener (default 127.0.0.1:8889, like configurable-http-proxy's API port): a
 * small router that the admin API (api.ts) registers its routes on, and that other parts
 * (metrics, status) add theirs to with one `router.add(...)` call each. Every route declares
 * what it needs (`access`); the gate (gate.ts) alone checks it. Everything under /api/ needs an
 * admin token and is checked before routing, so that without one every /api/ path answers 401,
 * known or not.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { BadInputError, PayloadTooLargeError, ShardError, UnsupportedMediaTypeError } from '../errors.js';
import type { Logger } from '../log.js';
import { NO_METER, type HttpMeter } from '../metrics/http.js';
import { type Access, Gate, type GateSettings } from './gate.js';
import { createListener, pathOnly } from './listener.js';
import { REQUEST_ID_HEADER, requestId } from './request-id.js';
import { FailureLimiter } from './rate-limit.js';
import { sendError, sendJson } from './respond.js';

export interface RouteContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Path parameters (`:name` segments), percent-decoded. */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** Who is calling: `api:<token name>` with an admin token, `metrics`, or `anonymous`. */
  readonly actor: string;
}

export type Handler = (c: RouteContext) => void | Promise<void>;

interface Route {
  readonly method: string;
  /** Literal segments, or `:name` for a parameter. */
  readonly segments: readonly string[];
  readonly handler: Handler;
  readonly access: Access;
}

/** Paths under this prefix always need a token. */
export const API_PREFIX = '/api/';

export class ControlRouter {
  private readonly routes: Route[] = [];

  /**
   * Adds a route, e.g. `add('GET', '/api/objects/:kind/:name', handler)`. Routes under /api/
   * always need an admin token; every other route says what it needs (gate.ts).
   */
  add(method: string, path: string, handler: Handler, opts: { access?: Access } = {}): this {
    if (!path.startsWith('/')) throw new Error(`route path must start with "/": ${path}`);
    const api = path.startsWith(API_PREFIX);
    if (api && opts.access !== undefined && opts.access !== 'admin')
      throw new Error(`routes under ${API_PREFIX} need an admin token: ${path}`);
    if (!api && opts.access === undefined) throw new Error(`route ${path} must declare its access`);
    this.routes.push({
      method: method.toUpperCase(),
      segments: path.split('/').slice(1),
      handler,
      access: api ? 'admin' : opts.access!,
    });
    return this;
  }

  /** The routes added so far, as `{ method, path, access }` (read-only: for the API description's test). */
  list(): { method: string; path: string; access: Access }[] {
    return this.routes.map((r) => ({ method: r.method, path: `/${r.segments.join('/')}`, access: r.access }));
  }

  /** The route for a request, the methods the path allows (for 405), or undefined (404). */
  match(
    method: string,
    rawSegments: readonly string[],
  ): { route: Route; params: Record<string, string> } | { allow: string[] } | undefined {
    const allow: string[] = [];
    for (const r of this.routes) {
      if (r.segments.length !== rawSegments.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < r.segments.length && ok; i++) {
        const s = r.segments[i]!;
        const raw = rawSegments[i]!;
        if (s.startsWith(':')) {
          if (raw === '') ok = false;
          else params[s.slice(1)] = raw;
        } else if (s !== raw) ok = false;
      }
      if (!ok) continue;
      if (r.method === method || (r.method === 'GET' && method === 'HEAD')) {
        for (const [k, v] of Object.entries(params)) {
          try {
            params[k] = decodeURIComponent(v);
          } catch {
            throw new BadInputError(`the path segment for ${k} is not valid percent-encoded UTF-8`);
          }
        }
        return { route: r, params };
      }
      allow.push(r.method);
    }
    return allow.length > 0 ? { allow: [...new Set(allow)] } : undefined;
  }
}

export interface ControlDeps {
  readonly router: ControlRouter;
  /** The credentials in force (they change on reload). */
  readonly credentials: () => GateSettings;
  readonly log: Logger;
  /** Counts and times responses by endpoint; none by default. */
  readonly meter?: HttpMeter | undefined;
  /** Whether the peer is a trusted proxy, whose X-Request-Id is taken as the request id. */
  trusted?(req: IncomingMessage): boolean;
  /** Failed authentications per source (rate-limit.ts); one is made when not given. */
  limiter?: FailureLimiter;
}

/**
 * Imports upload up to a gigabyte: a whole request may take this long to arrive (its headers
 * still within the listener's 10 s).
 */
const REQUEST_TIMEOUT_MS = 15 * 60_000;

function fail(deps: ControlDeps, req: IncomingMessage, res: ServerResponse, err: unknown): void {
  if (err instanceof ShardError) {
    if (err.status >= 500)
      deps.log.error(
        { event: 'api_failed', code: err.code, method: req.method, path: pathOnly(req.url), err: err.message },
        'admin request failed',
      );
    const problems = (err as { problems?: unknown }).problems;
    if (res.headersSent) return void res.destroy();
    sendJson(
      res,
      err.status,
      problems === undefined
        ? { code: err.code, message: err.message }
        : { code: err.code, message: err.message, problems },
    );
  } else {
    deps.log.error(
      { event: 'api_failed', method: req.method, path: pathOnly(req.url), err },
      'unexpected error in admin request',
    );
    sendError(res, 500, 'SHARD_ERR_INTERNAL', 'internal error');
  }
}

/** What a request is handled with: the server's deps, with its one gate and a scoped log. */
type RequestDeps = ControlDeps & { readonly gate: Gate };

async function handle(deps: RequestDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const query = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
  const method = req.method ?? 'GET';
  // /api/ is checked before routing: without a token, no answer says which paths exist.
  const api = path === '/api' || path.startsWith(API_PREFIX);
  let actor = api ? deps.gate.admit(req, res, 'admin') : 'anonymous';
  if (actor === undefined) return;
  const m = deps.router.match(method, path.split('/').slice(1));
  if (m === undefined)
    return sendError(
      res,
      404,
      'SHARD_ERR_NOT_FOUND',
      `no route for ${path.length > 100 ? `${path.slice(0, 100)}…` : path}`,
    );
  if ('allow' in m) {
    res.setHeader('Allow', m.allow.join(', '));
    return sendError(
      res,
      405,
      'SHARD_ERR_METHOD_NOT_ALLOWED',
      `${method} is not allowed on ${path.slice(0, 100)} (allowed: ${m.allow.join(', ')})`,
    );
  }
  if (!api) actor = deps.gate.admit(req, res, m.route.access);
  if (actor === undefined) return;
  await m.route.handler({ req, res, params: m.params, query, actor });
  if (actor.startsWith('api:') && method !== 'GET') {
    deps.log.info(
      { event: 'api_request', method, path: path.slice(0, 200), actor, status: res.statusCode },
      'admin request',
    );
  }
}

export function createControlServer(given: ControlDeps): Server {
  const limiter = given.limiter ?? new FailureLimiter();
  const base = { ...given, gate: new Gate(given.credentials, limiter, () => given.log) };
  const meter = base.meter ?? NO_METER;
  const idOf = (req: IncomingMessage): string => requestId(req, base.trusted?.(req) ?? false);
  return createListener({
    name: 'control',
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    log: () => base.log,
    requestId: idOf,
    onRequest: (req, res) => {
      // Every control answer carries a request id, and every log line about it names it: this
      // listener is for people and scrapers, a UUID per request costs nothing here.
      const id = idOf(req);
      res.setHeader(REQUEST_ID_HEADER, id);
      const start = meter.now();
      const endpoint = meter.control(pathOnly(req.url));
      res.once('finish', () => endpoint.done(req.method, res.statusCode, start));
      const scoped = { ...base, log: base.log.child({ request_id: id }) };
      return handle(scoped, req, res).catch((err: unknown) => fail(scoped, req, res, err));
    },
  });
}

/** Most bytes of a JSON request body. */
export const MAX_JSON_BYTES = 1024 * 1024;

/** Reads a JSON object body (an empty body is `{}`). */
export async function readJson(req: IncomingMessage, maxBytes = MAX_JSON_BYTES): Promise<Record<string, unknown>> {
  const type = req.headers['content-type'];
  if (type !== undefined && !/^application\/(?:[\w.+-]+\+)?json\s*(;|$)/i.test(type)) {
    req.resume();
    throw new UnsupportedMediaTypeError(`send the body as application/json, not ${type.slice(0, 60)}`);
  }
  const length = Number(req.headers['content-length'] ?? 0);
  if (length > maxBytes) {
    req.resume();
    throw new PayloadTooLargeError(`the JSON body may be at most ${maxBytes} bytes`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw new PayloadTooLargeError(`the JSON body may be at most ${maxBytes} bytes`);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new BadInputError(`the body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new BadInputError('the body must be a JSON object');
  return v as Record<string, unknown>;
}
