/**
 * The main listener: /auth (nginx auth_request), /shard (seed-compatible), /healthz, /readyz.
 * Handlers only read the identity, ask the assigner, and write the precomputed answer.
 * Proxy mode (src/proxy/) makes the same decision through `place`.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { ShardError, UnknownKindError } from '../errors.js';
import type { Logger } from '../log.js';
import type { HttpMeter } from '../metrics/http.js';
import type { Assigner } from '../core/assigner.js';
import { KindRuntime, type BucketRef } from '../core/buckets.js';
import type { Answers } from './answers.js';
import { checkPresentedCookie } from './cookie.js';
import { readIdentity, readKind, type IdentitySettings } from './identity.js';
import { createListener, pathOnly } from './listener.js';
import { REQUEST_ID_HEADER, requestId } from './request-id.js';
import { sendError, sendJson } from './respond.js';
import { socketTrusted } from './trust.js';

/** What the handlers need; swapped as a whole on reload. */
export interface MainSettings {
  /** Who may set the identity and the kind, and how they are read. */
  readonly identity: IdentitySettings;
  readonly defaultKind: KindRuntime;
  readonly kinds: ReadonlyMap<string, KindRuntime>;
  readonly redirect: string | null;
}

export interface MainContext {
  settings: MainSettings;
  readonly assigner: Assigner;
  /** Each bucket's precomputed answer (headers, cookie), updated on reload. */
  readonly answers: Answers;
  readonly log: Logger;
  /** Counts and times requests (metrics.ts); a no-op when metrics are off. */
  readonly meter: HttpMeter;
  /** Resolves when the store answers; rejects otherwise. */
  ready(): Promise<void>;
}

/** Longest time to receive a whole request: /auth and /shard bodies are never read. */
const REQUEST_TIMEOUT_MS = 30_000;

/** Whether the request's peer is a trusted proxy (trust.ts; once per connection). */
export function peerTrusted(ctx: MainContext, req: IncomingMessage): boolean {
  return socketTrusted(req.socket, ctx.settings.identity.trusted);
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
  return pathOnly(req.url);
}

/** The id for an error answer: the trusted proxy's X-Request-Id, or a new one. */
export function errorRequestId(ctx: MainContext, req: IncomingMessage): string {
  return requestId(req, peerTrusted(ctx, req));
}

/** Logs what needs logging (with a request id) and turns an error from the assigner into a Refusal. */
function refusal(ctx: MainContext, req: IncomingMessage, err: unknown): Refusal {
  if (err instanceof ShardError) {
    if (err.status < 500) return err;
    const id = errorRequestId(ctx, req);
    ctx.log.error(
      {
        event: 'request_failed',
        request_id: id,
        code: err.code,
        status: err.status,
        path: pathOf(req),
        err: err.message,
      },
      'request failed',
    );
    return { status: err.status, code: err.code, message: err.message, requestId: id };
  }
  const id = errorRequestId(ctx, req);
  ctx.log.error({ event: 'request_failed', request_id: id, path: pathOf(req), err }, 'unexpected error');
  return { ...INTERNAL, requestId: id };
}

function kindOf(s: MainSettings, req: IncomingMessage, trusted: boolean): KindRuntime | Refusal {
  const h = readKind(s.identity, req.headers, req.rawHeaders, trusted);
  if (h === undefined) return s.defaultKind;
  if (typeof h !== 'string') return h;
  return s.kinds.get(h) ?? new UnknownKindError(h.slice(0, 64));
}

/**
 * Where a placement goes: static functions rather than per-request closures, so that the
 * /auth hot path allocates nothing when the assignment is in memory. `start` is the request's
 * start time from `ctx.meter.now()`, for the placer's endpoint meter.
 */
export interface Placer<R> {
  placed(
    ctx: MainContext,
    req: IncomingMessage,
    res: R,
    kind: KindRuntime,
    name: string,
    bucket: BucketRef,
    start: number,
  ): void;
  refused(ctx: MainContext, req: IncomingMessage, res: R, r: Refusal, start: number): void;
}

/**
 * Identity and kind → bucket: the one decision behind /auth, /shard and proxy mode. Calls
 * exactly one of `to.placed` and `to.refused`, synchronously when the assignment is in memory;
 * otherwise returns the promise of that call, so that the listener's guard sees its failures.
 */
export function place<R>(
  ctx: MainContext,
  req: IncomingMessage,
  res: R,
  to: Placer<R>,
  start = 0,
): void | Promise<void> {
  const s = ctx.settings;
  const trusted = peerTrusted(ctx, req);
  const name = readIdentity(s.identity, req.headers, req.rawHeaders, trusted);
  if (typeof name !== 'string') return to.refused(ctx, req, res, name, start);
  const kind = kindOf(s, req, trusted);
  if (!(kind instanceof KindRuntime)) return to.refused(ctx, req, res, kind, start);
  let r: BucketRef | Promise<BucketRef>;
  try {
    r = ctx.assigner.resolve(kind, name);
  } catch (err) {
    return to.refused(ctx, req, res, refusal(ctx, req, err), start);
  }
  if (r instanceof Promise)
    return r.then(
      (b) => to.placed(ctx, req, res, kind, name, b, start),
      (err: unknown) => to.refused(ctx, req, res, refusal(ctx, req, err), start),
    );
  to.placed(ctx, req, res, kind, name, r, start);
}

/**
 * Answers a refusal with its request id (the logged one, or a new one: refusals below 500 are
 * the clients' mistakes and are logged only at debug level).
 */
function refuseHttp(ctx: MainContext, req: IncomingMessage, res: ServerResponse, r: Refusal): void {
  const id = r.requestId ?? errorRequestId(ctx, req);
  if (r.requestId === undefined && ctx.log.isLevelEnabled('debug')) {
    ctx.log.debug(
      { event: 'request_refused', request_id: id, status: r.status, code: r.code, path: pathOf(req) },
      r.message,
    );
  }
  sendError(res, r.status, r.code, r.message, [REQUEST_ID_HEADER, id]);
}

const AUTH: Placer<ServerResponse> = {
  placed(ctx, req, res, _kind, name, bucket, start) {
    const a = ctx.answers.of(bucket);
    if (a.signer !== null) checkPresentedCookie(ctx.log, req, name, bucket, a.signer, a.cookieToken);
    res.writeHead(200, a.authHeaders);
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
    const a = ctx.answers.of(bucket);
    if (a.signer !== null) checkPresentedCookie(ctx.log, req, name, bucket, a.signer, a.cookieToken);
    const cookie = ['Set-Cookie', a.cookie];
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

export function handle(ctx: MainContext, req: IncomingMessage, res: ServerResponse): void | Promise<void> {
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
      return ctx.ready().then(
        () => {
          sendJson(res, 200, { status: 'ready' });
          ctx.meter.readyz.done(req.method, 200, start);
        },
        (err: unknown) => {
          const id = errorRequestId(ctx, req);
          const code = (err as ShardError).code ?? 'SHARD_ERR';
          ctx.log.warn(
            { event: 'not_ready', request_id: id, code, err: (err as Error).message },
            'readiness check failed',
          );
          sendJson(res, 503, { status: 'unavailable', code, message: (err as Error).message }, [REQUEST_ID_HEADER, id]);
          ctx.meter.readyz.done(req.method, 503, start);
        },
      );
    default:
      sendError(
        res,
        404,
        'SHARD_ERR_NOT_FOUND',
        `no route for ${path.length > 100 ? `${path.slice(0, 100)}…` : path}`,
        [REQUEST_ID_HEADER, errorRequestId(ctx, req)],
      );
      return ctx.meter.unmatched.done(req.method, 404, start);
  }
}

export function createMainServer(ctx: MainContext): Server {
  return createListener({
    name: 'main',
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
    log: () => ctx.log,
    requestId: (req) => errorRequestId(ctx, req),
    onRequest: (req, res) => handle(ctx, req, res),
  });
}
