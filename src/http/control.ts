/**
 * The control listener (default 127.0.0.1:8889, like configurable-http-proxy's API port): a
 * small router that the admin API (api.ts) registers its routes on, and that other parts
 * (metrics, status) add theirs to with one `router.add(...)` call each.
 *
 * Everything under /api/ requires `Authorization: Bearer <token>` and is checked before
 * routing, so that without a valid token every /api/ path answers 401, known or not. Tokens
 * are compared as SHA-256 digests with crypto.timingSafeEqual, against every configured token
 * (no early exit), and never logged.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { BadInputError, PayloadTooLargeError, ShardError, UnauthorizedError, UnsupportedMediaTypeError } from '../errors.js';
import type { AdminToken } from '../config/types.js';
import type { Logger } from '../log.js';
import { NO_METER, type HttpMeter } from '../metrics/http.js';
import { REQUEST_ID_HEADER, requestId } from './request-id.js';
import { FailureLimiter } from './rate-limit.js';
import { sendError, sendJson } from './respond.js';

export interface RouteContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Path parameters (`:name` segments), percent-decoded. */
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  /** Who is calling: `api:<token name>` on authenticated routes, else `anonymous`. */
  readonly actor: string;
}

export type Handler = (c: RouteContext) => void | Promise<void>;

interface Route {
  readonly method: string;
  /** Literal segments, or `:name` for a parameter. */
  readonly segments: readonly string[];
  readonly handler: Handler;
  readonly auth: boolean;
}

/** Paths under this prefix always need a token. */
export const API_PREFIX = '/api/';

export class ControlRouter {
  private readonly routes: Route[] = [];

  /**
   * Adds a route, e.g. `add('GET', '/api/objects/:kind/:name', handler)`. Routes under /api/
   * always require a token; others only with `{ auth: true }` (e.g. /metrics stays open).
   */
  add(method: string, path: string, handler: Handler, opts: { auth?: boolean } = {}): this {
    if (!path.startsWith('/')) throw new Error(`route path must start with "/": ${path}`);
    this.routes.push({ method: method.toUpperCase(), segments: path.split('/').slice(1), handler, auth: path.startsWith(API_PREFIX) || opts.auth === true });
    return this;
  }

  /** The route for a request, the methods the path allows (for 405), or undefined (404). */
  match(method: string, rawSegments: readonly string[]): { route: Route; params: Record<string, string> } | { allow: string[] } | undefined {
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

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * The token's name when the Authorization header carries a configured token, else the
 * reason it does not. Compares against every token so timing does not reveal which matched.
 */
export function authenticate(header: string | undefined, tokens: readonly AdminToken[]): { name: string } | { error: string } {
  if (tokens.length === 0) return { error: 'the admin API is disabled: no admin token is configured (admin.token, admin.token_file, admin.tokens or SHARDER_ADMIN_TOKEN)' };
  if (header === undefined) return { error: 'missing "Authorization: Bearer <token>" header' };
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  if (!m) return { error: 'the Authorization header must be "Bearer <token>"' };
  const digest = sha256(m[1]!);
  let found: string | undefined;
  for (const t of tokens) if (timingSafeEqual(digest, t.hash) && found === undefined) found = t.name;
  return found === undefined ? { error: 'invalid token' } : { name: found };
}

export interface ControlDeps {
  readonly router: ControlRouter;
  /** The tokens in force (they change on reload). */
  tokens(): readonly AdminToken[];
  readonly log: Logger;
  /** Counts and times responses by endpoint; none by default. */
  readonly meter?: HttpMeter | undefined;
  /** Whether the peer is a trusted proxy, whose X-Request-Id is taken as the request id. */
  trusted?(req: IncomingMessage): boolean;
  /** Failed authentications per peer (rate-limit.ts); one is made when not given. */
  limiter?: FailureLimiter;
}

/** Admin operations (migrations, imports) can run for minutes; only headers must come quickly. */
const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 15 * 60_000;

/** The path without the query (queries may carry names or cursors; logs get the route). */
function pathOnly(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return (q === -1 ? url : url.slice(0, q)).slice(0, 200);
}

function fail(deps: ControlDeps, req: IncomingMessage, res: ServerResponse, err: unknown): void {
  if (err instanceof ShardError) {
    if (err.status >= 500) deps.log.error({ event: 'api_failed', code: err.code, method: req.method, path: pathOnly(req), err: err.message }, 'admin request failed');
    const problems = (err as { problems?: unknown }).problems;
    if (res.headersSent) return void res.destroy();
    sendJson(res, err.status, problems === undefined ? { code: err.code, message: err.message } : { code: err.code, message: err.message, problems });
  } else {
    deps.log.error({ event: 'api_failed', method: req.method, path: pathOnly(req), err }, 'unexpected error in admin request');
    sendError(res, 500, 'SHARD_ERR_INTERNAL', 'internal error');
  }
}

/** What a request is handled with: the server's deps, with its one limiter and a scoped log. */
type RequestDeps = ControlDeps & { readonly limiter: FailureLimiter };

async function handle(deps: RequestDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const query = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
  const method = req.method ?? 'GET';
  let actor = 'anonymous';
  const authFirst = path === '/api' || path.startsWith(API_PREFIX);
  const check = (): boolean => {
    const peer = req.socket.remoteAddress ?? '';
    const limiter = deps.limiter;
    const wait = limiter.retryAfter(peer);
    if (wait > 0) {
      res.setHeader('Retry-After', String(wait));
      sendError(res, 429, 'SHARD_ERR_RATE_LIMITED', `too many failed authentications from this address: try again in ${wait} s`);
      return false;
    }
    const a = authenticate(req.headers.authorization, deps.tokens());
    if ('error' in a) {
      if (limiter.fail(peer)) {
        deps.log.warn({ event: 'api_rate_limited', remote: peer, failures: limiter.allowed, window_ms: limiter.windowMs }, 'admin authentication failures from one address reached the limit: refusing it for the rest of the window');
      }
      deps.log.warn({ event: 'api_unauthorized', method, path: path.slice(0, 200), remote: req.socket.remoteAddress, reason: a.error }, 'admin request refused');
      const e = new UnauthorizedError(a.error);
      res.setHeader('WWW-Authenticate', 'Bearer realm="sharder"');
      sendError(res, e.status, e.code, e.message);
      return false;
    }
    actor = `api:${a.name}`;
    return true;
  };
  if (authFirst && !check()) return;
  const m = deps.router.match(method, path.split('/').slice(1));
  if (m === undefined) return sendError(res, 404, 'SHARD_ERR_NOT_FOUND', `no route for ${path.length > 100 ? `${path.slice(0, 100)}…` : path}`);
  if ('allow' in m) {
    res.setHeader('Allow', m.allow.join(', '));
    return sendError(res, 405, 'SHARD_ERR_METHOD_NOT_ALLOWED', `${method} is not allowed on ${path.slice(0, 100)} (allowed: ${m.allow.join(', ')})`);
  }
  if (m.route.auth && !authFirst && !check()) return;
  await m.route.handler({ req, res, params: m.params, query, actor });
  if (actor !== 'anonymous' && method !== 'GET') {
    deps.log.info({ event: 'api_request', method, path: path.slice(0, 200), actor, status: res.statusCode }, 'admin request');
  }
}

export function createControlServer(given: ControlDeps): Server {
  // One limiter for the server's life: each request below works on a copy of deps.
  const deps: RequestDeps = { ...given, limiter: given.limiter ?? new FailureLimiter() };
  const meter = deps.meter ?? NO_METER;
  const server = createServer({ headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS }, (req, res) => {
    // Every control answer carries a request id, and every log line about it names it: this
    // listener is for people and scrapers, a UUID per request costs nothing here.
    const id = requestId(req, deps.trusted?.(req) ?? false);
    res.setHeader(REQUEST_ID_HEADER, id);
    const start = meter.now();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const endpoint = meter.control(q === -1 ? url : url.slice(0, q));
    res.once('finish', () => endpoint.done(req.method, res.statusCode, start));
    const scoped = { ...deps, log: deps.log.child({ request_id: id }) };
    handle(scoped, req, res).catch((err: unknown) => fail(scoped, req, res, err));
  });
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    else socket.destroy();
  });
  return server;
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
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new BadInputError('the body must be a JSON object');
  return v as Record<string, unknown>;
}
