/**
 * Proxy mode's HTTP passes, in the order a request meets them: `refuse` (no placement),
 * `forward` (to the hub, through http-proxy-3), `onProxyReq` (the request to the hub has a
 * socket), `onProxyRes` (the hub answers), `onWebError` (retry, page, or abort), `fail`.
 */
import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { NoUpstreamError, UpstreamDownError, type ShardError } from '../errors.js';
import { NO_IDENTITY } from '../core/names.js';
import { errorRequestId, type Refusal } from '../http/main.js';
import { REQUEST_ID_HEADER } from '../http/request-id.js';
import { sendError } from '../http/respond.js';
import type { BucketRef, KindRuntime } from '../core/buckets.js';
import type { ProxyContext } from './context.js';
import {
  aborted,
  armTimeouts,
  exchangeOf,
  prepareHeaders,
  reportFailure,
  startExchange,
  upstreamError,
  type ProxiedRequest,
} from './exchange.js';
import { responseHeaders, wantsJson } from './headers.js';
import { errorPage } from './pages.js';

/** Methods that may be sent twice, when they carry no body. */
const RETRYABLE = new Set(['GET', 'HEAD', 'OPTIONS']);
const RETRYABLE_CODES = new Set(['ECONNRESET', 'EPIPE']);

/** A request that may be sent to the hub again: idempotent, bodiless, fully read. */
export function retryable(req: IncomingMessage): boolean {
  if (!RETRYABLE.has(req.method ?? '')) return false;
  const cl = req.headers['content-length'];
  return (cl === undefined || cl === '0') && req.headers['transfer-encoding'] === undefined && req.complete;
}

/** No placement: a login redirect for pages without identity (proxy.login_url), else the refusal. */
export function refuse(px: ProxyContext, req: IncomingMessage, res: ServerResponse, r: Refusal): void {
  px.stats.refused++;
  const login = px.config.loginUrl;
  if (
    login !== null &&
    r.code === NO_IDENTITY.code &&
    (req.method === 'GET' || req.method === 'HEAD') &&
    !wantsJson(req.headers.accept)
  ) {
    px.stats.loginRedirects++;
    const location = login.replaceAll('{next}', encodeURIComponent(req.url ?? '/'));
    res.writeHead(302, ['Location', location, 'Content-Length', '0', 'Cache-Control', 'no-store']);
    res.end();
    return;
  }
  if (!req.complete) res.shouldKeepAlive = false; // the unread body makes the connection unusable
  sendError(res, r.status, r.code, r.message, [REQUEST_ID_HEADER, r.requestId ?? errorRequestId(px.main, req)]);
}

export function forward(
  px: ProxyContext,
  req: ProxiedRequest,
  res: ServerResponse,
  kind: KindRuntime,
  bucket: BucketRef,
): void {
  if (res.destroyed || req.socket.destroyed) {
    px.stats.clientAborts++; // gone while a first assignment waited for the store
    return;
  }
  const upstream = bucket.upstream;
  if (upstream === null) return fail(px, req, res, bucket, new NoUpstreamError(kind.name, bucket.name));
  const target = px.pool.get(upstream);
  const x = startExchange(req, bucket, upstream, target);
  res.once('close', () => {
    if (!res.writableFinished) aborted(px, x); // http-proxy-3 destroys the hub's side
  });
  prepareHeaders(px, req, false);
  px.stats.requests++;
  px.proxy.web(req, res, target.options, px.webError);
}

/** Emitted when the request to the hub exists: connect and idle timers go on it. */
export function onProxyReq(px: ProxyContext, proxyReq: ClientRequest, req: IncomingMessage): void {
  const x = exchangeOf(req);
  if (x === undefined) return;
  x.proxyReq = proxyReq;
  x.reused = proxyReq.reusedSocket;
  armTimeouts(px, proxyReq, x);
}

export function onProxyRes(
  px: ProxyContext,
  proxyRes: IncomingMessage,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  const x = exchangeOf(req);
  if (x === undefined || res.destroyed) {
    proxyRes.destroy();
    return;
  }
  try {
    res.writeHead(
      proxyRes.statusCode ?? 502,
      proxyRes.statusMessage,
      responseHeaders(proxyRes.rawHeaders, px.main.answers.of(x.bucket).cookie),
    );
  } catch (err) {
    proxyRes.destroy();
    return fail(
      px,
      req,
      res,
      x.bucket,
      new UpstreamDownError(x.bucket.name, `unusable response: ${(err as Error).message}`, { cause: err }),
    );
  }
  // A hub dying mid-body must end the client's response too: pipe() alone would leave it
  // open forever. (stream.pipeline() would do this, at the price of an AbortController and a
  // DOMException per request in Node 20: a tenth of the proxy's time under load.) A client
  // going away is handled by http-proxy-3, which destroys the request to the hub.
  const cut = (err?: Error): void => {
    if (x.settled) return;
    fail(
      px,
      req,
      res,
      x.bucket,
      x.timeout ?? new UpstreamDownError(x.bucket.name, 'the response was cut short', { cause: err }),
    );
  };
  proxyRes.once('error', cut); // also makes Node report the cut at all (it emits only to listeners)
  proxyRes.once('close', () => {
    if (!proxyRes.complete) cut();
  });
  proxyRes.pipe(res);
}

/** Retry once on a pooled connection the hub had just closed; else answer the failure, or count the abort. */
export function onWebError(px: ProxyContext, err: Error, req: ProxiedRequest, res: ServerResponse): void {
  const x = exchangeOf(req);
  if (x === undefined) return;
  if ((res.destroyed || req.socket.destroyed) && x.timeout === undefined) return aborted(px, x);
  const code = (err as NodeJS.ErrnoException).code ?? '';
  if (x.reused && !x.retried && !res.headersSent && RETRYABLE_CODES.has(code) && retryable(req)) {
    // The request never reached the hub: send it once more on a fresh or another pooled connection.
    x.retried = true;
    x.reused = false;
    x.proxyReq = undefined;
    px.stats.retries++;
    px.proxy.web(req, res, { ...x.target.options, buffer: Readable.from([]) }, px.webError);
    return;
  }
  fail(px, req, res, x.bucket, upstreamError(x, err));
}

/** Logs and counts a hub failure and answers it, as a page or JSON, naming the hub. */
export function fail(
  px: ProxyContext,
  req: IncomingMessage,
  res: ServerResponse,
  bucket: BucketRef,
  err: ShardError,
): void {
  const x = exchangeOf(req);
  if (x !== undefined) {
    if (x.settled) return;
    x.settled = true;
  }
  const id = reportFailure(px, req, bucket, err, x?.upstream ?? bucket.upstream);
  if (res.headersSent) {
    res.destroy(); // mid-response: a cut connection is the only honest signal left
    return;
  }
  const json = wantsJson(req.headers.accept);
  const body = json
    ? JSON.stringify({ code: err.code, message: err.message, bucket: bucket.name })
    : errorPage(err.status, bucket.name, err.message, err.code);
  if (!req.complete) res.shouldKeepAlive = false;
  res.writeHead(err.status, [
    'Content-Type',
    json ? 'application/json; charset=utf-8' : 'text/html; charset=utf-8',
    'Content-Length',
    String(Buffer.byteLength(body)),
    'Cache-Control',
    'no-store',
    'Set-Cookie',
    px.main.answers.of(bucket).cookie,
    REQUEST_ID_HEADER,
    id,
  ]);
  res.end(req.method === 'HEAD' ? undefined : body);
}
