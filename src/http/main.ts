/**
 * The main listener: /auth (nginx auth_request), /shard (seed-compatible), /healthz, /readyz.
 * Handlers only read the identity, ask the assigner, and write the precomputed answer.
 * Proxy mode (proxy.ts) makes the same decision through `place`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { ShardError, UnknownKindError } from '../errors.js';
import type { Logger } from '../log.js';
import type { HttpMeter } from '../metrics/http.js';
import type { Assigner } from '../service/assigner.js';
import type { BucketRef, KindRuntime } from '../service/runtime.js';
import { checkPresentedCookie } from './cookie.js';
import { isTrusted, readIdentity, type IdentitySettings } from './identity.js';
import { REQUEST_ID_HEADER, requestId } from './request-id.js';
import { sendError, sendJson } from './respond.js';

/** What the handlers need; swapped as a whole on reload. */
export interface MainSettings {
  readonly identity: IdentitySettings;
  /** Lower-case kind header name. */
  readonly kindHeader: string;
  readonly defaultKind: KindRuntime;
  readonly kinds: ReadonlyMap<string, KindRuntime>;
  readonly redirect: string | null;
}

export interface MainContext {
  settings: MainSettings;
  readonly assigner: Assigner;
  readonly log: Logger;
  /** Counts and times requests (metrics.ts); a no-op when metrics are off. */
  readonly meter: HttpMeter;
  /** Resolves when the store answers; rejects otherwise. */
  ready(): Promise<void>;
}

/** Timeouts that cut off slow or idle clients (slowloris) without hurting nginx keep-alive. */
export const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 30_000;
export const KEEP_ALIVE_TIMEOUT_MS = 75_000;
/** How often Node checks the header and request timeouts. */
const TIMEOUT_SWEEP_MS = 1000;
/** Node's default; an identity header can never need more. */
export const MAX_HEADER_SIZE = 16 * 1024;

const kTrust = Symbol('sharder.trust');
type TrustSocket = Socket & { [kTrust]?: { settings: IdentitySettings; trusted: boolean } };

/** Trust is a property of the connection: computed once per socket and settings. */
export function socketTrusted(socket: TrustSocket, settings: IdentitySettings): boolean {
  const t = socket[kTrust];
  if (t !== undefined && t.settings === settings) return t.trusted;
  const trusted = isTrusted(settings, socket.remoteAddress);
  socket[kTrust] = { settings, trusted };
  return trusted;
}

/** A request the sharder will not place: the status and stable code to answer with. */
export interface Refusal {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  /** Set when the refusal was logged: the id the log line carries, for the response header. */
  readonly requestId?: string | undefined;
}

const INTERNAL: Refusal = Object.freeze({ status: 500, code: 'SHARD_ERR_INTERNAL', message: 'internal error' });

/** The request's path, without the query (which may carry tokens: it is never logged). */
export function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return (q === -1 ? url : url.slice(0, q)).slice(0, 200);
}

/** The id for an error answer: the trusted proxy's X-Request-Id, or a new one. */
export function errorRequestId(ctx: MainContext, req: IncomingMessage): string {
  return requestId(req, socketTrusted(req.socket, ctx.settings.identity));
}

/** Logs what needs logging (with a request id) and turns an error from the assigner into a Refusal. */
function refusal(ctx: MainContext, req: IncomingMessage, err: unknown): Refusal {
  if (err instanceof ShardError) {
    if (err.status < 500) return err;
    const id = errorRequestId(ctx, req);
    ctx.log.error({ event: 'request_failed', request_id: id, code: err.code, status: err.status, path: pathOf(req), err: err.message }, 'request failed');
    return { status: err.status, code: err.code, message: err.message, requestId: id };
  }
  const id = errorRequestId(ctx, req);
  ctx.log.error({ event: 'request_failed', request_id: id, path: pathOf(req), err }, 'unexpected error');
  return { ...INTERNAL, requestId: id };
}

function kindOf(s: MainSettings, req: IncomingMessage): KindRuntime | UnknownKindError {
  const h = req.headers[s.kindHeader];
  if (h === undefined) return s.defaultKind;
  const k = typeof h === 'string' ? s.kinds.get(h) : undefined;
  return k ?? new UnknownKindError(typeof h === 'string' ? h.slice(0, 64) : String(h));
}

/**
 * Where a placement goes: static functions rather than per-request closures, so that the
 * /auth hot path allocates nothing when the assignment is in memory. `start` is the request's
 * start time from `ctx.meter.now()`, for the placer's endpoint meter.
 */
export interface Placer<R> {
  placed(ctx: MainContext, req: IncomingMessage, res: R, kind: KindRuntime, name: string, bucket: BucketRef, start: number): void;
  refused(ctx: MainContext, req: IncomingMessage, res: R, r: Refusal, start: number): void;
}

/**
 * Identity and kind → bucket: the one decision behind /auth, /shard and proxy mode. Calls
 * exactly one of `to.placed` and `to.refused`, synchronously when the assignment is in memory.
 */
export function place<R>(ctx: MainContext, req: IncomingMessage, res: R, to: Placer<R>, start = 0): void {
  const s = ctx.settings;
  const name = readIdentity(s.identity, req.headers, req.rawHeaders, socketTrusted(req.socket, s.identity));
  if (typeof name !== 'string') return to.refused(ctx, req, res, name, start);
  const kind = kindOf(s, req);
  if (kind instanceof UnknownKindError) return to.refused(ctx, req, res, kind, start);
  let r: BucketRef | Promise<BucketRef>;
  try {
    r = ctx.assigner.resolve(kind, name);
  } catch (err) {
    return to.refused(ctx, req, res, refusal(ctx, req, err), start);
  }
  if (r instanceof Promise) r.then((b) => to.placed(ctx, req, res, kind, name, b, start), (err: unknown) => to.refused(ctx, req, res, refusal(ctx, req, err), start));
  else to.placed(ctx, req, res, kind, name, r, start);
}

/**
 * Answers a refusal with its request id (the logged one, or a new one: refusals below 500 are
 * the clients' mistakes and are logged only at debug level).
 */
function refuseHttp(ctx: MainContext, req: IncomingMessage, res: ServerResponse, r: Refusal): void {
  const id = r.requestId ?? errorRequestId(ctx, req);
  if (r.requestId === undefined && ctx.log.isLevelEnabled('debug')) {
    ctx.log.debug({ event: 'request_refused', request_id: id, status: r.status, code: r.code, path: pathOf(req) }, r.message);
  }
  sendError(res, r.status, r.code, r.message, [REQUEST_ID_HEADER, id]);
}

const AUTH: Placer<ServerResponse> = {
  placed(ctx, req, res, _kind, name, bucket, start) {
    if (bucket.signer !== null) checkPresentedCookie(ctx.log, req, name, bucket);
    res.writeHead(200, bucket.authHeaders);
    res.end();
    ctx.meter.auth.done(req.method, 200, start);
  },
  refused(ctx, req, res, r, start) {
    refuseHttp(ctx, req, res, r);
    ctx.meter.auth.done(req.method, r.status, start);
  },
};

const SHARD: Placer<ServerResponse> = {
  placed(ctx, req, res, kind, name, bucket, start) {
    if (bucket.signer !== null) checkPresentedCookie(ctx.log, req, name, bucket);
    const cookie = ['Set-Cookie', bucket.cookie];
    const redirect = ctx.settings.redirect;
    if (redirect !== null) {
      const location = redirect.replaceAll('{bucket}', bucket.name).replaceAll('{kind}', kind.name);
      res.writeHead(302, [...cookie, 'Location', location, 'Content-Length', '0', 'Cache-Control', 'no-store']);
      res.end();
      ctx.meter.shard.done(req.method, 302, start);
    } else {
      sendJson(res, 200, { kind: kind.name, name, bucket: bucket.name }, cookie);
      ctx.meter.shard.done(req.method, 200, start);
    }
  },
  refused(ctx, req, res, r, start) {
    refuseHttp(ctx, req, res, r);
    ctx.meter.shard.done(req.method, r.status, start);
  },
};

export function handle(ctx: MainContext, req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const start = ctx.meter.now();
  switch (path) {
    case '/auth':
      return place(ctx, req, res, AUTH, start);
    case '/shard':
      return place(ctx, req, res, SHARD, start);
    case '/healthz':
      sendJson(res, 200, { status: 'ok' });
      return ctx.meter.healthz.done(req.method, 200, start);
    case '/readyz':
      ctx.ready().then(
        () => {
          sendJson(res, 200, { status: 'ready' });
          ctx.meter.readyz.done(req.method, 200, start);
        },
        (err: unknown) => {
          const id = errorRequestId(ctx, req);
          const code = (err as ShardError).code ?? 'SHARD_ERR';
          ctx.log.warn({ event: 'not_ready', request_id: id, code, err: (err as Error).message }, 'readiness check failed');
          sendJson(res, 503, { status: 'unavailable', code, message: (err as Error).message }, [REQUEST_ID_HEADER, id]);
          ctx.meter.readyz.done(req.method, 503, start);
        },
      );
      return;
    default:
      sendError(res, 404, 'SHARD_ERR_NOT_FOUND', `no route for ${path.length > 100 ? `${path.slice(0, 100)}…` : path}`, [REQUEST_ID_HEADER, errorRequestId(ctx, req)]);
      return ctx.meter.unmatched.done(req.method, 404, start);
  }
}

export function createMainServer(ctx: MainContext): Server {
  const server = createServer(
    // The timeouts are enforced by a periodic sweep (Node's default: every 30 s, which would let
    // a slow client hold a connection for 40 s instead of the 10 s header timeout).
    { headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: REQUEST_TIMEOUT_MS, keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS, maxHeaderSize: MAX_HEADER_SIZE, connectionsCheckingInterval: TIMEOUT_SWEEP_MS },
    (req, res) => handle(ctx, req, res),
  );
  server.on('clientError', answerClientError);
  server.on('connect', refuseConnect);
  return server;
}

/** CONNECT is no request the sharder serves; without this Node drops the socket unanswered. */
export function refuseConnect(_req: IncomingMessage, socket: Socket): void {
  if (!socket.writable) return void socket.destroy();
  socket.end('HTTP/1.1 405 Method Not Allowed\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
}

/**
 * Malformed requests (bad header bytes, smuggling attempts, oversized headers) never reach
 * the handler; answer them plainly instead of resetting the connection.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable) return void socket.destroy();
  const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
