/**
 * The one way the sharder makes an HTTP listener: the main listener, proxy mode's listener and
 * the control listener all come from `createListener`, so that what protects a listener from
 * slow, malformed or hostile clients cannot drift between them:
 * - headers must arrive within HEADERS_TIMEOUT_MS, checked every TIMEOUT_SWEEP_MS (Node's
 *   default sweep is 30 s, which lets a slowloris client hold a socket for 40 s), answered 408;
 * - at most MAX_HEADER_SIZE bytes of headers (431); malformed requests 400 (clientError);
 * - CONNECT answered 405 (without a listener Node drops the socket unanswered);
 * - only origin-form targets (`/path`): absolute-form and `*` get 400 before any handler;
 * - last line of defence: an exception thrown (or a promise rejected) while handling one
 *   request answers that request 500 with a request id and is logged; the process keeps
 *   serving. Handlers still answer their own errors: this only catches bugs.
 * What differs by listener is passed in (request timeout, keep-alive, the upgrade handler).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from '../log.js';
import { REQUEST_ID_HEADER } from './request-id.js';
import { sendError } from './respond.js';

/** Every header must have arrived by then. */
export const HEADERS_TIMEOUT_MS = 10_000;
/** How often Node checks the header and request timeouts. */
const TIMEOUT_SWEEP_MS = 1000;
/** Node's default; an identity header can never need more. */
const MAX_HEADER_SIZE = 16 * 1024;
/** nginx keeps upstream connections for 60 s by default: stay open a little longer. */
const KEEP_ALIVE_TIMEOUT_MS = 75_000;

type Outcome = void | Promise<void>;

export interface ListenerSpec {
  /** For log lines: `main`, `proxy` or `control`. */
  readonly name: string;
  /** Longest time to receive a whole request, body included; 0 for none (uploads in proxy mode). */
  readonly requestTimeoutMs: number;
  readonly keepAliveTimeoutMs?: number;
  readonly log: () => Logger;
  /** The request id for an answer the listener writes itself (a trusted proxy's, or a new one). */
  requestId(req: IncomingMessage): string;
  onRequest(req: IncomingMessage, res: ServerResponse): Outcome;
  /** Upgrade requests (websockets); without it they are ordinary requests. */
  onUpgrade?: (req: IncomingMessage, socket: Socket, head: Buffer) => Outcome;
}

export function createListener(spec: ListenerSpec): Server {
  const server = createServer(
    {
      headersTimeout: HEADERS_TIMEOUT_MS,
      requestTimeout: spec.requestTimeoutMs,
      keepAliveTimeout: spec.keepAliveTimeoutMs ?? KEEP_ALIVE_TIMEOUT_MS,
      maxHeaderSize: MAX_HEADER_SIZE,
      connectionsCheckingInterval: TIMEOUT_SWEEP_MS,
    },
    (req, res) => {
      if (!originForm(req)) return badTarget(spec, req, res);
      guarded(spec, req, res, () => spec.onRequest(req, res));
    },
  );
  server.on('clientError', answerClientError);
  server.on('connect', refuseConnect);
  const upgrade = spec.onUpgrade;
  if (upgrade !== undefined) {
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      // The HTTP server stops watching an upgraded socket: without a listener, a reset client
      // would throw from the socket's 'error' event and take the process down.
      socket.on('error', noop);
      if (!originForm(req)) return void socket.end(rawAnswer('400 Bad Request'));
      guarded(spec, req, socket, () => upgrade(req, socket, head));
    });
  }
  return server;
}

const noop = (): void => {};

function originForm(req: IncomingMessage): boolean {
  return (req.url ?? '').startsWith('/');
}

function badTarget(spec: ListenerSpec, req: IncomingMessage, res: ServerResponse): void {
  if (!req.complete) res.shouldKeepAlive = false;
  sendError(res, 400, 'SHARD_ERR_BAD_TARGET', 'the request target must be a path (origin-form)', [
    REQUEST_ID_HEADER,
    spec.requestId(req),
  ]);
}

/** Runs a handler; a throw or a rejection is a bug: log it, answer 500, keep serving. */
function guarded(spec: ListenerSpec, req: IncomingMessage, res: ServerResponse | Socket, run: () => Outcome): void {
  const failed = (err: unknown): void => internalError(spec, req, res, err);
  try {
    const p = run();
    if (p !== undefined) p.catch(failed);
  } catch (err) {
    failed(err);
  }
}

function internalError(spec: ListenerSpec, req: IncomingMessage, res: ServerResponse | Socket, err: unknown): void {
  let id: string;
  try {
    const given = 'getHeader' in res ? res.getHeader(REQUEST_ID_HEADER) : undefined;
    id = typeof given === 'string' ? given : spec.requestId(req);
    spec.log().error(
      {
        event: 'internal_error',
        listener: spec.name,
        request_id: id,
        method: req.method,
        path: pathOnly(req.url),
        err,
      },
      'unexpected error while handling a request: answered 500',
    );
  } catch {
    id = 'unknown';
  }
  if (!('writeHead' in res)) {
    if (!res.destroyed) res.end(rawAnswer('500 Internal Server Error', id));
    return;
  }
  if (res.headersSent || res.destroyed) return void res.destroy();
  // Whatever the failed handler set (a half-built header list) is not ours to send.
  for (const name of res.getHeaderNames()) res.removeHeader(name);
  res.shouldKeepAlive = false;
  sendError(res, 500, 'SHARD_ERR_INTERNAL', 'internal error', [REQUEST_ID_HEADER, id]);
}

/** The path without its query (queries may carry names or cursors; logs get the path). */
export function pathOnly(url: string | undefined): string {
  const u = url ?? '/';
  const q = u.indexOf('?');
  return (q === -1 ? u : u.slice(0, q)).slice(0, 200);
}

function rawAnswer(status: string, id?: string): string {
  return (
    `HTTP/1.1 ${status}\r\n${id === undefined ? '' : `${REQUEST_ID_HEADER}: ${id}\r\n`}Connection: ` +
    'close\r\nContent-Length: 0\r\n\r\n'
  );
}

/** CONNECT is no request the sharder serves; without this Node drops the socket unanswered. */
function refuseConnect(_req: IncomingMessage, socket: Socket): void {
  if (!socket.writable) return void socket.destroy();
  socket.end(rawAnswer('405 Method Not Allowed'));
}

/**
 * Malformed requests (bad header bytes, smuggling attempts, oversized headers) and clients too
 * slow to send their headers never reach a handler; answer them plainly instead of resetting.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable) return void socket.destroy();
  const status =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? '431 Request Header Fields Too Large'
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? '408 Request Timeout'
        : '400 Bad Request';
  socket.end(rawAnswer(status));
}
