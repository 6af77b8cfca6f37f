/**
 * Proxy mode: the main listener forwards every request and websocket to the user's hub itself,
 * as configurable-http-proxy does for one hub. Identity → bucket is the same decision as /auth
 * (`place` in main.ts); the forwarding is http-proxy-3's (the maintained rewrite of http-proxy
 * that configurable-http-proxy moved to in 5.1), with what it leaves to its user done here:
 * timeouts, error pages, hop-by-hop headers, the `hub` cookie, and closing every socket that a
 * failure or an abort leaves behind (configurable-http-proxy's issues #388, #434 and #557 were
 * sockets and memory leaked on exactly those paths).
 *
 * The sharder keeps one path prefix for itself, RESERVED_PREFIX (/_sharder/healthz,
 * /_sharder/readyz, /_sharder/shard, /_sharder/auth): everything else belongs to the hubs.
 */
import { Agent as HttpAgent, type ClientRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { ProxyServer, type ServerOptions } from 'http-proxy-3';
import type { ProxyConfig } from '../config/types.js';
import { NoUpstreamError, ShardError, UpstreamDownError, UpstreamTimeoutError } from '../errors.js';
import type { BucketRef, KindRuntime } from '../service/runtime.js';
import { checkPresentedCookie } from './cookie.js';
import { NO_IDENTITY } from './identity.js';
import { createListener } from './listener.js';
import { errorRequestId, handle, peerTrusted, place, type MainContext, type Placer, type Refusal } from './main.js';
import { forwardRequestHeaders, responseHeaders, wantsJson } from './proxy-headers.js';
import { REQUEST_ID_HEADER } from './request-id.js';
import { sendError } from './respond.js';

/** Paths under this prefix are the sharder's own (health, readiness, /shard); the rest is proxied. */
export const RESERVED_PREFIX = '/_sharder';
/**
 * After one side of a websocket closes, how long the other side may take to flush and close
 * before it is destroyed: a hub or client that never answers our FIN must not hold a socket.
 */
const HALF_CLOSED_GRACE_MS = 5_000;

/**
 * Counters of what proxy mode did, since start. A plain object the metrics endpoint can export
 * as it is; `websocketsOpen` is a gauge, the rest only grow.
 */
export interface ProxyStats {
  /** HTTP requests forwarded to a hub (retries not counted twice). */
  requests: number;
  /** Websocket handshakes forwarded to a hub. */
  websockets: number;
  websocketsOpen: number;
  /** Requests answered by the sharder without reaching a hub (no identity, bad identity, …). */
  refused: number;
  loginRedirects: number;
  /** Idempotent requests sent again after a reused keep-alive connection turned out closed. */
  retries: number;
  /** Clients that went away before their answer was complete. */
  clientAborts: number;
  /** Hub failures by stable code: SHARD_ERR_UPSTREAM_DOWN, _TIMEOUT, SHARD_ERR_NO_UPSTREAM. */
  errors: Record<string, number>;
  /** The same failures by hub: `kind/bucket` → code → count. */
  errorsByHub: Record<string, Record<string, number>>;
}

export function newProxyStats(): ProxyStats {
  return {
    requests: 0, websockets: 0, websocketsOpen: 0, refused: 0, loginRedirects: 0, retries: 0, clientAborts: 0,
    errors: { SHARD_ERR_UPSTREAM_DOWN: 0, SHARD_ERR_UPSTREAM_TIMEOUT: 0, SHARD_ERR_NO_UPSTREAM: 0 },
    errorsByHub: {},
  };
}

/** One hub address: the parsed target and its keep-alive connection pool. */
interface Target {
  readonly options: ServerOptions;
  readonly agent: HttpAgent;
}

/** What one forwarded request or websocket carries through http-proxy-3's callbacks. */
interface Exchange {
  readonly bucket: BucketRef;
  readonly upstream: string;
  readonly target: Target;
  proxyReq: ClientRequest | undefined;
  /** The request went out on a kept-alive connection (which the hub may have just closed). */
  reused: boolean;
  retried: boolean;
  upgraded: boolean;
  /** Set when our own timer cut the exchange, so that the failure is reported as a timeout. */
  timeout: UpstreamTimeoutError | undefined;
  /** The failure or abort has been counted and answered: later echoes of it are ignored. */
  settled: boolean;
  /** The client's Transfer-Encoding, which the request to the hub must keep (see the constructor). */
  readonly transferEncoding: string | undefined;
}

function exchange(req: IncomingMessage, bucket: BucketRef, upstream: string, target: Target): Exchange {
  return {
    bucket, upstream, target, proxyReq: undefined, reused: false, retried: false, upgraded: false, timeout: undefined, settled: false,
    transferEncoding: req.headers['transfer-encoding'],
  };
}

const kExchange = Symbol('sharder.exchange');
type ProxiedRequest = IncomingMessage & { [kExchange]?: Exchange };

/** Methods that may be sent twice, when they carry no body. */
const RETRYABLE = new Set(['GET', 'HEAD', 'OPTIONS']);
const RETRYABLE_CODES = new Set(['ECONNRESET', 'EPIPE']);

const noop = (): void => {};

function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

function reserved(path: string): boolean {
  return path === RESERVED_PREFIX || path.startsWith(`${RESERVED_PREFIX}/`);
}

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A sentence for the log and the page from a socket error's code. */
function describeError(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED': return 'connection refused';
    case 'ECONNRESET': return 'connection reset';
    case 'EPIPE': return 'connection closed while sending';
    case 'EHOSTUNREACH': case 'ENETUNREACH': return 'host unreachable';
    case 'ENOTFOUND': case 'EAI_AGAIN': return 'host name not found';
    case 'ETIMEDOUT': return 'connection timed out';
    case 'HPE_INVALID_CONSTANT': case 'HPE_INVALID_HEADER_TOKEN': case 'HPE_INVALID_CHUNK_SIZE': return 'invalid HTTP response';
    default: return err.code ?? 'connection failed';
  }
}

export class ProxyMode {
  readonly stats: ProxyStats = newProxyStats();
  readonly server: Server;
  private readonly proxy: ProxyServer;
  private targets = new Map<string, Target>();
  /** Client sockets of open websockets: Server.close() does not end them, stop() must. */
  private readonly upgraded = new Set<Socket>();
  /** Where HTTP placements go; made once, not per request. */
  private readonly httpPlacer: Placer<ServerResponse> = {
    placed: (ctx, req, res, kind, name, bucket) => {
      if (bucket.signer !== null) checkPresentedCookie(ctx.log, req, name, bucket);
      this.forward(req as ProxiedRequest, res, kind, name, bucket);
    },
    refused: (_ctx, req, res, r) => this.refuse(req as ProxiedRequest, res, r),
  };

  constructor(private readonly ctx: MainContext, private config: ProxyConfig) {
    this.proxy = new ProxyServer({
      xfwd: false, // forwarding headers are set by forwardRequestHeaders, trust-aware
      changeOrigin: false, // the hub sees the Host the client asked for
      // The request target is passed on byte for byte, as nginx's proxy_pass does: without it
      // http-proxy-3 re-parses it as a WHATWG URL, resolving dot segments and re-encoding.
      toProxy: true,
      selfHandleResponse: true, // onProxyRes writes the answer: it must end when the hub's is cut
    });
    // http-proxy-3 throws from emit('error') when nobody listens: errors it raises outside the
    // per-request callback (a client socket failing mid-websocket) must never crash the process.
    this.proxy.on('error', (err, req, res) => this.onStrayError(err, req as ProxiedRequest, res));
    this.proxy.on('proxyReq', (proxyReq, req) => this.onProxyReq(proxyReq, req as ProxiedRequest));
    this.proxy.on('proxyRes', (proxyRes, req, res) => this.onProxyRes(proxyRes, req as ProxiedRequest, res));
    this.proxy.on('proxyReqWs', (proxyReq, req, socket) => this.onProxyReqWs(proxyReq, req as ProxiedRequest, socket));
    // http-proxy-3's deleteLength pass gives every DELETE and OPTIONS without Content-Length a
    // `Content-Length: 0` and drops its Transfer-Encoding: a chunked body then follows a request
    // the hub thinks has none, and is read as the next request on the pooled connection, with
    // whatever identity header the client wrote into it (request smuggling). Put the framing
    // back before the request is sent.
    this.proxy.before('web', 'stream', (req) => {
      const x = (req as ProxiedRequest)[kExchange];
      if (x?.transferEncoding !== undefined && req.headers['transfer-encoding'] === undefined) {
        delete req.headers['content-length'];
        req.headers['transfer-encoding'] = x.transferEncoding;
      }
    });

    this.server = createListener({
      name: 'proxy',
      // Uploads may take long: a request is bounded by proxy.idle_timeout_ms of silence,
      // not by a total time.
      requestTimeoutMs: 0,
      log: () => this.ctx.log,
      requestId: (req) => errorRequestId(this.ctx, req),
      onRequest: (req, res) => this.onRequest(req, res),
      onUpgrade: (req, socket, head) => this.onUpgrade(req, socket, head),
    });
  }

  /** Applies new proxy settings; connection pools are rebuilt when their settings changed. */
  reload(config: ProxyConfig): void {
    if (config.keepAliveMs !== this.config.keepAliveMs || config.maxFreeSockets !== this.config.maxFreeSockets) {
      // Old pools keep serving the requests in flight; their idle sockets expire on their own.
      this.targets = new Map();
    }
    this.config = config;
  }

  /** Ends every websocket (Server.close() leaves upgraded sockets alone). */
  closeWebsockets(): void {
    for (const s of this.upgraded) s.destroy();
    this.upgraded.clear();
  }

  /** Closes websockets and every pooled connection to the hubs. */
  close(): void {
    this.closeWebsockets();
    for (const t of this.targets.values()) t.agent.destroy();
    this.targets.clear();
  }

  private target(upstream: string): Target {
    let t = this.targets.get(upstream);
    if (t === undefined) {
      const url = new URL(upstream);
      const keepAlive = this.config.keepAliveMs > 0;
      const opts = { keepAlive, timeout: keepAlive ? this.config.keepAliveMs : undefined, maxFreeSockets: this.config.maxFreeSockets, scheduling: 'lifo' as const };
      const agent = url.protocol === 'https:' ? new HttpsAgent(opts) : new HttpAgent(opts);
      t = { options: { target: url, agent }, agent };
      this.targets.set(upstream, t);
    }
    return t;
  }

  // ---- HTTP -------------------------------------------------------------------------------

  /** The listener has checked the target (origin-form) and guards against throws (listener.ts). */
  private onRequest(req: ProxiedRequest, res: ServerResponse): void | Promise<void> {
    const url = req.url ?? '/';
    if (reserved(pathOf(url))) {
      req.url = url.slice(RESERVED_PREFIX.length) || '/';
      return handle(this.ctx, req, res);
    }
    return place(this.ctx, req, res, this.httpPlacer);
  }

  private refuse(req: IncomingMessage, res: ServerResponse, r: Refusal): void {
    this.stats.refused++;
    const login = this.config.loginUrl;
    if (login !== null && r.code === NO_IDENTITY.code && (req.method === 'GET' || req.method === 'HEAD') && !wantsJson(req.headers.accept)) {
      this.stats.loginRedirects++;
      const location = login.replaceAll('{next}', encodeURIComponent(req.url ?? '/'));
      res.writeHead(302, ['Location', location, 'Content-Length', '0', 'Cache-Control', 'no-store']);
      res.end();
      return;
    }
    if (!req.complete) res.shouldKeepAlive = false; // the unread body makes the connection unusable
    sendError(res, r.status, r.code, r.message, [REQUEST_ID_HEADER, r.requestId ?? errorRequestId(this.ctx, req)]);
  }

  private forward(req: ProxiedRequest, res: ServerResponse, kind: KindRuntime, _name: string, bucket: BucketRef): void {
    if (res.destroyed || req.socket.destroyed) {
      this.stats.clientAborts++; // gone while a first assignment waited for the store
      return;
    }
    const upstream = bucket.upstream;
    if (upstream === null) return this.fail(req, res, bucket, new NoUpstreamError(kind.name, bucket.name));
    const target = this.target(upstream);
    const x = exchange(req, bucket, upstream, target);
    req[kExchange] = x;
    res.once('close', () => {
      if (!res.writableFinished) this.aborted(x); // http-proxy-3 destroys the hub's side
    });
    this.prepare(req, false);
    this.stats.requests++;
    this.proxy.web(req, res, target.options, this.onWebError);
  }

  private prepare(req: IncomingMessage, websocket: boolean): void {
    const s = this.ctx.settings.identity;
    forwardRequestHeaders(req.headers, {
      websocket,
      identityHeader: s.header,
      altIdentityHeader: s.altHeader,
      kindHeaders: [s.kindHeader, s.altKindHeader],
      forwardIdentity: this.config.forwardIdentity,
      trusted: peerTrusted(this.ctx, req),
      peer: req.socket.remoteAddress,
      encrypted: req.socket instanceof TLSSocket && req.socket.encrypted,
    });
  }

  /** Emitted when the request to the hub has a socket: connect and idle timers go on it. */
  private onProxyReq(proxyReq: ClientRequest, req: ProxiedRequest): void {
    const x = req[kExchange];
    if (x === undefined) return;
    x.proxyReq = proxyReq;
    x.reused = proxyReq.reusedSocket;
    this.armTimeouts(proxyReq, x);
  }

  private armTimeouts(proxyReq: ClientRequest, x: Exchange): void {
    const arm = (socket: Socket): void => {
      if (socket.connecting) {
        // A new socket carries the pool's idle timeout (keep_alive_ms), and Node applies the
        // request's own only once connected: until then ours is the only timer.
        socket.setTimeout(0);
        const ms = this.config.connectTimeoutMs;
        const timer = setTimeout(() => {
          x.timeout = new UpstreamTimeoutError(x.bucket.name, 'connect', ms);
          proxyReq.destroy(x.timeout);
        }, ms);
        const clear = (): void => clearTimeout(timer);
        socket.once('connect', clear);
        socket.once('close', clear);
      }
    };
    if (proxyReq.socket) arm(proxyReq.socket);
    else proxyReq.once('socket', arm);
    const idle = this.config.idleTimeoutMs;
    if (idle > 0) {
      proxyReq.setTimeout(idle, () => {
        x.timeout = new UpstreamTimeoutError(x.bucket.name, 'idle', idle);
        proxyReq.destroy(x.timeout);
      });
    }
  }

  private onProxyRes(proxyRes: IncomingMessage, req: ProxiedRequest, res: ServerResponse): void {
    const x = req[kExchange];
    if (x === undefined || res.destroyed) {
      proxyRes.destroy();
      return;
    }
    try {
      res.writeHead(proxyRes.statusCode ?? 502, proxyRes.statusMessage, responseHeaders(proxyRes.rawHeaders, x.bucket.cookie));
    } catch (err) {
      proxyRes.destroy();
      return this.fail(req, res, x.bucket, new UpstreamDownError(x.bucket.name, `unusable response: ${(err as Error).message}`, { cause: err }));
    }
    // A hub dying mid-body must end the client's response too: pipe() alone would leave it
    // open forever. (stream.pipeline() would do this, at the price of an AbortController and a
    // DOMException per request in Node 20: a tenth of the proxy's time under load.) A client
    // going away is handled by http-proxy-3, which destroys the request to the hub.
    const cut = (err?: Error): void => {
      if (x.settled) return;
      this.fail(req, res, x.bucket, x.timeout ?? new UpstreamDownError(x.bucket.name, 'the response was cut short', { cause: err }));
    };
    proxyRes.once('error', cut); // also makes Node report the cut at all (it emits only to listeners)
    proxyRes.once('close', () => {
      if (!proxyRes.complete) cut();
    });
    proxyRes.pipe(res);
  }

  /** http-proxy-3's error callback for HTTP: retry, or answer the page, or count the abort. */
  private readonly onWebError = (err: Error, reqIn: IncomingMessage, resIn: ServerResponse | Socket): void => {
    const req = reqIn as ProxiedRequest;
    const res = resIn as ServerResponse;
    const x = req[kExchange];
    if (x === undefined) return;
    if ((res.destroyed || req.socket.destroyed) && x.timeout === undefined) return this.aborted(x);
    const code = (err as NodeJS.ErrnoException).code ?? '';
    if (x.reused && !x.retried && !res.headersSent && RETRYABLE_CODES.has(code) && this.retryable(req)) {
      // The hub closed a pooled connection just as it was reused: the request never reached
      // it, so send it once more on a fresh or another pooled connection.
      x.retried = true;
      x.reused = false;
      x.proxyReq = undefined;
      this.stats.retries++;
      this.proxy.web(req, res, { ...x.target.options, buffer: Readable.from([]) }, this.onWebError);
      return;
    }
    this.fail(req, res, x.bucket, this.upstreamError(x, err));
  };

  private retryable(req: IncomingMessage): boolean {
    if (!RETRYABLE.has(req.method ?? '')) return false;
    const cl = req.headers['content-length'];
    return (cl === undefined || cl === '0') && req.headers['transfer-encoding'] === undefined && req.complete;
  }

  /** The client went away: count it once and let go of the hub's side. */
  private aborted(x: Exchange): void {
    if (x.settled) return;
    x.settled = true;
    this.stats.clientAborts++;
    x.proxyReq?.destroy();
  }

  private upstreamError(x: Exchange, err: Error): ShardError {
    if (x.timeout !== undefined) return x.timeout;
    if (err instanceof ShardError) return err;
    return new UpstreamDownError(x.bucket.name, describeError(err as NodeJS.ErrnoException), { cause: err });
  }

  /** Logs and counts a hub failure and answers it, as a page or JSON, naming the hub. */
  private fail(req: ProxiedRequest, res: ServerResponse, bucket: BucketRef, err: ShardError): void {
    const x = req[kExchange];
    if (x !== undefined) {
      if (x.settled) return;
      x.settled = true;
    }
    this.count(err, bucket);
    const id = errorRequestId(this.ctx, req);
    this.logFailure(req, bucket, err, x?.upstream ?? bucket.upstream, id);
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
      'Content-Type', json ? 'application/json; charset=utf-8' : 'text/html; charset=utf-8',
      'Content-Length', String(Buffer.byteLength(body)),
      'Cache-Control', 'no-store',
      'Set-Cookie', bucket.cookie,
      REQUEST_ID_HEADER, id,
    ]);
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  private count(err: ShardError, bucket: BucketRef): void {
    this.stats.errors[err.code] = (this.stats.errors[err.code] ?? 0) + 1;
    const hub = (this.stats.errorsByHub[`${bucket.kind}/${bucket.name}`] ??= {});
    hub[err.code] = (hub[err.code] ?? 0) + 1;
  }

  /** `upstream` is the address the exchange used (a reload may have changed the bucket's since). */
  private logFailure(req: IncomingMessage, bucket: BucketRef, err: ShardError, upstream: string | null, id: string): void {
    const cause = err.cause as NodeJS.ErrnoException | undefined;
    this.ctx.log.error({
      event: 'proxy_failed', request_id: id, code: err.code, bucket: bucket.name, kind: bucket.kind, upstream,
      method: req.method, path: pathOf(req.url ?? '/'), websocket: req.headers.upgrade !== undefined, cause: cause?.code ?? cause?.message,
    }, err.message);
  }

  /** Errors http-proxy-3 emits outside a callback: a client socket failing. Never rethrown. */
  private onStrayError(err: Error, req: ProxiedRequest, res: ServerResponse | Socket | undefined): void {
    this.ctx.log.debug({ event: 'proxy_socket_error', err: err.message, path: pathOf(req?.url ?? '/') }, 'client socket error');
    if (res !== undefined && 'destroy' in res) res.destroy();
  }

  // ---- websockets -------------------------------------------------------------------------

  private onUpgrade(req: ProxiedRequest, socket: Socket, head: Buffer): void | Promise<void> {
    if (reserved(pathOf(req.url ?? '/'))) return this.answerSocket(req, socket, 404, 'SHARD_ERR_NOT_FOUND', `no websocket under ${RESERVED_PREFIX}`);
    if (req.method !== 'GET' || (req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      return this.answerSocket(req, socket, 400, 'SHARD_ERR_BAD_UPGRADE', 'only websocket upgrades (GET with Upgrade: websocket) are proxied');
    }
    return place(this.ctx, req, socket, {
      placed: (_ctx, _req, _socket, kind, _name, bucket) => this.forwardWs(req, socket, head, kind, bucket),
      refused: (_ctx, _req, _socket, r) => {
        this.stats.refused++;
        this.answerSocket(req, socket, r.status, r.code, r.message);
      },
    });
  }

  private forwardWs(req: ProxiedRequest, socket: Socket, head: Buffer, kind: KindRuntime, bucket: BucketRef): void {
    if (socket.destroyed) {
      this.stats.clientAborts++;
      return;
    }
    const upstream = bucket.upstream;
    if (upstream === null) {
      const err = new NoUpstreamError(kind.name, bucket.name);
      this.count(err, bucket);
      const id = errorRequestId(this.ctx, req);
      this.logFailure(req, bucket, err, null, id);
      return this.answerSocket(req, socket, err.status, err.code, err.message, bucket.name, id);
    }
    const target = this.target(upstream);
    req[kExchange] = exchange(req, bucket, upstream, target);
    this.prepare(req, true);
    this.stats.websockets++;
    this.upgraded.add(socket);
    socket.once('close', () => this.upgraded.delete(socket));
    this.proxy.ws(req, socket, head, target.options, this.onWsError);
  }

  /** Emitted as soon as the handshake request to the hub exists (before it has a socket). */
  private onProxyReqWs(proxyReq: ClientRequest, req: ProxiedRequest, socket: Socket): void {
    const x = req[kExchange];
    if (x === undefined) return;
    x.proxyReq = proxyReq;
    this.armTimeouts(proxyReq, x);
    // A client leaving during the handshake: http-proxy-3 would keep the request to the hub.
    const onClientClose = (): void => {
      if (!x.upgraded) {
        this.aborted(x);
        proxyReq.destroy();
      }
    };
    socket.once('close', onClientClose);
    // Runs before http-proxy-3's own 'upgrade' listener, which pipes the two sockets.
    proxyReq.once('upgrade', (_res: IncomingMessage, hubSocket: Socket) => {
      x.upgraded = true;
      if (socket.destroyed) {
        hubSocket.destroy();
        return;
      }
      this.stats.websocketsOpen++;
      hubSocket.once('close', () => {
        this.stats.websocketsOpen--;
        halfClosed(socket); // http-proxy-3 ends the client socket; make sure it goes
      });
      socket.once('close', () => halfClosed(hubSocket));
      hubSocket.on('error', noop); // also reported to onWsError by http-proxy-3
      const idle = this.config.websocketIdleTimeoutMs;
      // Traffic in both directions passes the client socket, so its idle timer is the
      // websocket's. (http-proxy-3 clears the hub socket's timer.)
      if (idle > 0) {
        socket.setTimeout(idle, () => {
          this.ctx.log.info({ event: 'websocket_idle', bucket: x.bucket.name, idle_ms: idle }, 'websocket closed after idle timeout');
          socket.destroy();
          hubSocket.destroy();
        });
      } else socket.setTimeout(0);
    });
  }

  /** http-proxy-3's error callback for websockets; it destroys the client socket afterwards. */
  private readonly onWsError = (err: Error, reqIn: IncomingMessage, resIn: ServerResponse | Socket): void => {
    const req = reqIn as ProxiedRequest;
    const socket = resIn as Socket;
    const x = req[kExchange];
    if (x === undefined) return;
    if (x.upgraded || x.settled) {
      // After the switch, a socket error is the end of the websocket, not a page.
      x.settled = true;
      socket.destroy();
      return;
    }
    if (socket.destroyed) return this.aborted(x);
    x.settled = true;
    const e = this.upstreamError(x, err);
    this.count(e, x.bucket);
    const id = errorRequestId(this.ctx, req);
    this.logFailure(req, x.bucket, e, x.upstream, id);
    this.answerSocket(req, socket, e.status, e.code, e.message, x.bucket.name, id);
  };

  /** Writes a JSON HTTP answer on a socket that has not been switched, then closes it. */
  private answerSocket(req: IncomingMessage, socket: Socket, status: number, code: string, message: string, bucket?: string, id = errorRequestId(this.ctx, req)): void {
    if (socket.destroyed) return;
    const body = JSON.stringify(bucket === undefined ? { code, message } : { code, message, bucket });
    const reason = STATUS_TEXT[status] ?? 'Error';
    socket.end(
      `HTTP/${req.httpVersion === '1.0' ? '1.0' : '1.1'} ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\n${REQUEST_ID_HEADER}: ${id}\r\nConnection: close\r\n\r\n${body}`,
    );
    halfClosed(socket);
  }
}

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 500: 'Internal Server Error',
  502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};

/** Destroys a socket that has not closed within HALF_CLOSED_GRACE_MS (its peer never answered our FIN). */
function halfClosed(socket: Socket): void {
  if (socket.destroyed) return;
  socket.end();
  const timer = setTimeout(() => socket.destroy(), HALF_CLOSED_GRACE_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

function errorPage(status: number, bucket: string, message: string, code: string): string {
  const title = `${status} ${STATUS_TEXT[status] ?? 'Error'}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title>
<style>body{font-family:system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em;color:#222}code{color:#666}</style></head>
<body><h1>Your hub is not available</h1>
<p>${escapeHtml(message)}</p>
<p>Hub: <strong>${escapeHtml(bucket)}</strong> &middot; <code>${title} &middot; ${escapeHtml(code)}</code></p>
</body></html>
`;
}
