/**
 * Proxy mode: the main listener forwards every request and websocket to the user's hub itself,
 * as configurable-http-proxy does for one hub. Identity → bucket is the same decision as /auth
 * (`place` in http/main.ts); the forwarding is http-proxy-3's (the maintained rewrite of
 * http-proxy that configurable-http-proxy moved to in 5.1), with what it leaves to its user done
 * here in named passes, as http-proxy-3 splits its own: web.ts (HTTP), websocket.ts, with the
 * shared steps in exchange.ts, the pools in pool.ts and the pages in pages.ts. What is done
 * here: timeouts, error pages, hop-by-hop headers, the `hub` cookie, and closing every socket
 * that a failure or an abort leaves behind (configurable-http-proxy's issues #388, #434 and
 * #557 were sockets and memory leaked on exactly those paths).
 *
 * The sharder keeps one path prefix for itself, RESERVED_PREFIX (/_sharder/healthz,
 * /_sharder/readyz, /_sharder/shard, /_sharder/auth): everything else belongs to the hubs.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { ProxyServer } from 'http-proxy-3';
import type { ProxyConfig } from '../config/types.js';
import { checkPresentedCookie } from '../http/cookie.js';
import { createListener, pathOnly } from '../http/listener.js';
import { errorRequestId, handle, place, type MainContext, type Placer } from '../http/main.js';
import type { ProxyContext } from './context.js';
import { RESERVED_PREFIX, exchangeOf, reserved } from './exchange.js';
import { TargetPool } from './pool.js';
import { newProxyStats, type ProxyStats } from './stats.js';
import { forward, onProxyReq, onProxyRes, onWebError, refuse } from './web.js';
import { onProxyReqWs, onUpgrade, onWsError } from './websocket.js';

export { RESERVED_PREFIX } from './exchange.js';
export type { ProxyStats } from './stats.js';

export class ProxyMode {
  readonly server: Server;
  private readonly px: ProxyContext;
  /** Where HTTP placements go; made once, not per request. */
  private readonly httpPlacer: Placer<ServerResponse>;

  constructor(ctx: MainContext, config: ProxyConfig) {
    const proxy = new ProxyServer({
      xfwd: false, // forwarding headers are set by headers.ts, trust-aware
      changeOrigin: false, // the hub sees the Host the client asked for
      // The request target is passed on byte for byte, as nginx's proxy_pass does: without it
      // http-proxy-3 re-parses it as a WHATWG URL, resolving dot segments and re-encoding.
      toProxy: true,
      selfHandleResponse: true, // onProxyRes writes the answer: it must end when the hub's is cut
    });
    const px: ProxyContext = {
      main: ctx,
      proxy,
      stats: newProxyStats(),
      pool: new TargetPool(config),
      upgraded: new Set(),
      config,
      webError: (err, req, res) => onWebError(px, err, req, res as ServerResponse),
      wsError: (err, req, socket) => onWsError(px, err, req, socket as Socket),
    };
    this.px = px;
    // http-proxy-3 throws from emit('error') when nobody listens: errors it raises outside the
    // per-request callback (a client socket failing mid-websocket) must never crash the process.
    proxy.on('error', (err, req, res) => {
      ctx.log.debug({ event: 'proxy_socket_error', err: err.message, path: pathOnly(req?.url) }, 'client socket error');
      if (res !== undefined && 'destroy' in res) res.destroy();
    });
    proxy.on('proxyReq', (proxyReq, req) => onProxyReq(px, proxyReq, req));
    proxy.on('proxyRes', (proxyRes, req, res) => onProxyRes(px, proxyRes, req, res));
    proxy.on('proxyReqWs', (proxyReq, req, socket) => onProxyReqWs(px, proxyReq, req, socket));
    // http-proxy-3's deleteLength pass gives every DELETE and OPTIONS without Content-Length a
    // `Content-Length: 0` and drops its Transfer-Encoding: a chunked body then follows a request
    // the hub thinks has none, and is read as the next request on the pooled connection, with
    // whatever identity header the client wrote into it (request smuggling). Put the framing
    // back before the request is sent.
    proxy.before('web', 'stream', (req) => {
      const x = exchangeOf(req);
      if (x?.transferEncoding !== undefined && req.headers['transfer-encoding'] === undefined) {
        delete req.headers['content-length'];
        req.headers['transfer-encoding'] = x.transferEncoding;
      }
    });
    this.httpPlacer = {
      placed: (c, req, res, kind, name, bucket) => {
        const a = c.answers.of(bucket);
        if (a.signer !== null) checkPresentedCookie(c.log, req, name, bucket, a.signer, a.cookieToken);
        forward(px, req, res, kind, bucket);
      },
      refused: (_c, req, res, r) => refuse(px, req, res, r),
    };
    this.server = createListener({
      name: 'proxy',
      // Uploads may take long: a request is bounded by proxy.idle_timeout_ms of silence,
      // not by a total time.
      requestTimeoutMs: 0,
      log: () => ctx.log,
      requestId: (req) => errorRequestId(ctx, req),
      onRequest: (req, res) => this.onRequest(req, res),
      onUpgrade: (req, socket, head) => onUpgrade(px, req, socket, head),
    });
  }

  /** What proxy mode did since start (metrics). */
  get stats(): ProxyStats {
    return this.px.stats;
  }

  /** The listener has checked the target (origin-form) and guards against throws (http/listener.ts). */
  private onRequest(req: IncomingMessage, res: ServerResponse): void | Promise<void> {
    const url = req.url ?? '/';
    if (reserved(pathOnly(url))) {
      req.url = url.slice(RESERVED_PREFIX.length) || '/';
      return handle(this.px.main, req, res);
    }
    return place(this.px.main, req, res, this.httpPlacer);
  }

  /** Applies new proxy settings; connection pools are rebuilt when their settings changed. */
  reload(config: ProxyConfig): void {
    this.px.pool.reload(config);
    this.px.config = config;
  }

  /** Ends every websocket (Server.close() leaves upgraded sockets alone). */
  closeWebsockets(): void {
    for (const s of this.px.upgraded) s.destroy();
    this.px.upgraded.clear();
  }

  /** Closes websockets and every pooled connection to the hubs. */
  close(): void {
    this.closeWebsockets();
    this.px.pool.close();
  }
}
