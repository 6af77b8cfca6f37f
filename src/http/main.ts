/**
 * The main listener: /auth (nginx auth_request), /shard (seed-compatible), /healthz, /readyz.
 * Handlers only read the identity, ask the assigner, and write the precomputed answer.
 * Proxy mode (proxy.ts) makes the same decision through `place`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { ShardError, UnknownKindError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Assigner } from '../service/assigner.js';
import type { BucketRef, KindRuntime } from '../service/runtime.js';
import { checkPresentedCookie } from './cookie.js';
import { isTrusted, readIdentity, type IdentitySettings } from './identity.js';
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
}

const INTERNAL: Refusal = Object.freeze({ status: 500, code: 'SHARD_ERR_INTERNAL', message: 'internal error' });

/** Logs what needs logging and turns an error from the assigner into a Refusal. */
function refusal(ctx: MainContext, req: IncomingMessage, err: unknown): Refusal {
  if (err instanceof ShardError) {
    if (err.status >= 500) ctx.log.error({ event: 'request_failed', code: err.code, url: req.url, err: err.message }, 'request failed');
    return err;
  }
  ctx.log.error({ event: 'request_failed', url: req.url, err }, 'unexpected error');
  return INTERNAL;
}

function kindOf(s: MainSettings, req: IncomingMessage): KindRuntime | UnknownKindError {
  const h = req.headers[s.kindHeader];
  if (h === undefined) return s.defaultKind;
  const k = typeof h === 'string' ? s.kinds.get(h) : undefined;
  return k ?? new UnknownKindError(typeof h === 'string' ? h.slice(0, 64) : String(h));
}

/**
 * Where a placement goes: static functions rather than per-request closures, so that the
 * /auth hot path allocates nothing when the assignment is in memory.
 */
export interface Placer<R> {
  placed(ctx: MainContext, req: IncomingMessage, res: R, kind: KindRuntime, name: string, bucket: BucketRef): void;
  refused(ctx: MainContext, req: IncomingMessage, res: R, r: Refusal): void;
}

/**
 * Identity and kind → bucket: the one decision behind /auth, /shard and proxy mode. Calls
 * exactly one of `to.placed` and `to.refused`, synchronously when the assignment is in memory.
 */
export function place<R>(ctx: MainContext, req: IncomingMessage, res: R, to: Placer<R>): void {
  const s = ctx.settings;
  const name = readIdentity(s.identity, req.headers, req.rawHeaders, socketTrusted(req.socket, s.identity));
  if (typeof name !== 'string') return to.refused(ctx, req, res, name);
  const kind = kindOf(s, req);
  if (kind instanceof UnknownKindError) return to.refused(ctx, req, res, kind);
  let r: BucketRef | Promise<BucketRef>;
  try {
    r = ctx.assigner.resolve(kind, name);
  } catch (err) {
    return to.refused(ctx, req, res, refusal(ctx, req, err));
  }
  if (r instanceof Promise) r.then((b) => to.placed(ctx, req, res, kind, name, b), (err: unknown) => to.refused(ctx, req, res, refusal(ctx, req, err)));
  else to.placed(ctx, req, res, kind, name, r);
}

const refuseHttp = (_ctx: MainContext, _req: IncomingMessage, res: ServerResponse, r: Refusal): void => sendError(res, r.status, r.code, r.message);

const AUTH: Placer<ServerResponse> = {
  placed(ctx, req, res, _kind, name, bucket) {
    if (bucket.signer !== null) checkPresentedCookie(ctx.log, req, name, bucket);
    res.writeHead(200, bucket.authHeaders);
    res.end();
  },
  refused: refuseHttp,
};

const SHARD: Placer<ServerResponse> = {
  placed(ctx, req, res, kind, name, bucket) {
    if (bucket.signer !== null) checkPresentedCookie(ctx.log, req, name, bucket);
    const cookie = ['Set-Cookie', bucket.cookie];
    const redirect = ctx.settings.redirect;
    if (redirect !== null) {
      const location = redirect.replaceAll('{bucket}', bucket.name).replaceAll('{kind}', kind.name);
      res.writeHead(302, [...cookie, 'Location', location, 'Content-Length', '0', 'Cache-Control', 'no-store']);
      res.end();
    } else {
      sendJson(res, 200, { kind: kind.name, name, bucket: bucket.name }, cookie);
    }
  },
  refused: refuseHttp,
};

export function handle(ctx: MainContext, req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  switch (path) {
    case '/auth':
      return place(ctx, req, res, AUTH);
    case '/shard':
      return place(ctx, req, res, SHARD);
    case '/healthz':
      return sendJson(res, 200, { status: 'ok' });
    case '/readyz':
      ctx.ready().then(
        () => sendJson(res, 200, { status: 'ready' }),
        (err: unknown) => sendJson(res, 503, { status: 'unavailable', code: (err as ShardError).code ?? 'SHARD_ERR', message: (err as Error).message }),
      );
      return;
    default:
      return sendError(res, 404, 'SHARD_ERR_NOT_FOUND', `no route for ${path.length > 100 ? `${path.slice(0, 100)}…` : path}`);
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
