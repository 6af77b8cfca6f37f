/**
 * Proxy mode's websocket passes: `onUpgrade` (checks and placement), `forwardWs` (the
 * handshake to the hub), `onProxyReqWs` (timers, the switch, idle and half-closed sockets),
 * `onWsError` (a failure before the switch is an answer; after it, the end of the websocket).
 */
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { NoUpstreamError } from '../errors.js';
import { pathOnly } from '../http/listener.js';
import { errorRequestId, place } from '../http/main.js';
import type { BucketRef, KindRuntime } from '../core/buckets.js';
import type { ProxyContext } from './context.js';
import {
  RESERVED_PREFIX,
  aborted,
  armTimeouts,
  exchangeOf,
  prepareHeaders,
  reportFailure,
  reserved,
  startExchange,
  upstreamError,
  type ProxiedRequest,
} from './exchange.js';
import { answerSocket, halfClosed } from './pages.js';

const noop = (): void => {};

export function onUpgrade(px: ProxyContext, req: ProxiedRequest, socket: Socket, head: Buffer): void | Promise<void> {
  const answer = (status: number, code: string, message: string): void =>
    answerSocket(req, socket, { status, code, message, id: errorRequestId(px.main, req) });
  if (reserved(pathOnly(req.url))) return answer(404, 'SHARD_ERR_NOT_FOUND', `no websocket under ${RESERVED_PREFIX}`);
  if (req.method !== 'GET' || (req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
    return answer(400, 'SHARD_ERR_BAD_UPGRADE', 'only websocket upgrades (GET with Upgrade: websocket) are proxied');
  }
  return place(px.main, req, socket, {
    placed: (_ctx, _req, _socket, kind, _name, bucket) => forwardWs(px, req, socket, head, kind, bucket),
    refused: (_ctx, _req, _socket, r) => {
      px.stats.refused++;
      answer(r.status, r.code, r.message);
    },
  });
}

function forwardWs(
  px: ProxyContext,
  req: ProxiedRequest,
  socket: Socket,
  head: Buffer,
  kind: KindRuntime,
  bucket: BucketRef,
): void {
  if (socket.destroyed) {
    px.stats.clientAborts++;
    return;
  }
  const upstream = bucket.upstream;
  if (upstream === null) {
    const err = new NoUpstreamError(kind.name, bucket.name);
    const id = reportFailure(px, req, bucket, err, null);
    return answerSocket(req, socket, {
      status: err.status,
      code: err.code,
      message: err.message,
      bucket: bucket.name,
      id,
    });
  }
  const target = px.pool.get(upstream);
  startExchange(req, bucket, upstream, target);
  prepareHeaders(px, req, true);
  px.stats.websockets++;
  px.upgraded.add(socket);
  socket.once('close', () => px.upgraded.delete(socket));
  px.proxy.ws(req, socket, head, target.options, px.wsError);
}

/** Emitted as soon as the handshake request to the hub exists (before it has a socket). */
export function onProxyReqWs(px: ProxyContext, proxyReq: ClientRequest, req: IncomingMessage, socket: Socket): void {
  const x = exchangeOf(req);
  if (x === undefined) return;
  x.proxyReq = proxyReq;
  armTimeouts(px, proxyReq, x);
  // A client leaving during the handshake: http-proxy-3 would keep the request to the hub.
  socket.once('close', () => {
    if (!x.upgraded) {
      aborted(px, x);
      proxyReq.destroy();
    }
  });
  // Runs before http-proxy-3's own 'upgrade' listener, which pipes the two sockets.
  proxyReq.once('upgrade', (_res: IncomingMessage, hubSocket: Socket) => {
    x.upgraded = true;
    if (socket.destroyed) {
      hubSocket.destroy();
      return;
    }
    px.stats.websocketsOpen++;
    hubSocket.once('close', () => {
      px.stats.websocketsOpen--;
      halfClosed(socket); // http-proxy-3 ends the client socket; make sure it goes
    });
    socket.once('close', () => halfClosed(hubSocket));
    hubSocket.on('error', noop); // also reported to onWsError by http-proxy-3
    const idle = px.config.websocketIdleTimeoutMs;
    // Traffic in both directions passes the client socket, so its idle timer is the
    // websocket's. (http-proxy-3 clears the hub socket's timer.)
    if (idle > 0) {
      socket.setTimeout(idle, () => {
        px.main.log.info(
          { event: 'websocket_idle', bucket: x.bucket.name, idle_ms: idle },
          'websocket closed after idle timeout',
        );
        socket.destroy();
        hubSocket.destroy();
      });
    } else socket.setTimeout(0);
  });
}

/** http-proxy-3's error callback for websockets; it destroys the client socket afterwards. */
export function onWsError(px: ProxyContext, err: Error, req: IncomingMessage, socket: Socket): void {
  const x = exchangeOf(req);
  if (x === undefined) return;
  if (x.upgraded || x.settled) {
    // After the switch, a socket error is the end of the websocket, not a page.
    x.settled = true;
    socket.destroy();
    return;
  }
  if (socket.destroyed) return aborted(px, x);
  x.settled = true;
  const e = upstreamError(x, err);
  const id = reportFailure(px, req, x.bucket, e, x.upstream);
  answerSocket(req, socket, { status: e.status, code: e.code, message: e.message, bucket: x.bucket.name, id });
}
