/**
 * One forwarded request or websocket, as it passes through http-proxy-3's callbacks, and the
 * steps both kinds share: the headers for the hub, the connect and idle timers, a client's
 * abort, and a failure's count and log line.
 */
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { ShardError, UpstreamDownError, UpstreamTimeoutError } from '../errors.js';
import { pathOnly } from '../http/listener.js';
import { errorRequestId, peerTrusted } from '../http/main.js';
import type { BucketRef } from '../core/buckets.js';
import type { ProxyContext } from './context.js';
import { forwardRequestHeaders } from './headers.js';
import type { Target } from './pool.js';
import { countFailure } from './stats.js';

export interface Exchange {
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
  /** The client's Transfer-Encoding, which the request to the hub must keep (index.ts). */
  readonly transferEncoding: string | undefined;
}

const kExchange = Symbol('sharder.exchange');
export type ProxiedRequest = IncomingMessage & { [kExchange]?: Exchange };

/** Starts an exchange and ties it to the request, where http-proxy-3's callbacks find it. */
export function startExchange(req: ProxiedRequest, bucket: BucketRef, upstream: string, target: Target): Exchange {
  const x: Exchange = {
    bucket,
    upstream,
    target,
    proxyReq: undefined,
    reused: false,
    retried: false,
    upgraded: false,
    timeout: undefined,
    settled: false,
    transferEncoding: req.headers['transfer-encoding'],
  };
  req[kExchange] = x;
  return x;
}

export function exchangeOf(req: IncomingMessage): Exchange | undefined {
  return (req as ProxiedRequest)[kExchange];
}

/** Paths under this prefix are the sharder's own (health, readiness, /shard); the rest is proxied. */
export const RESERVED_PREFIX = '/_sharder';

export function reserved(path: string): boolean {
  return path === RESERVED_PREFIX || path.startsWith(`${RESERVED_PREFIX}/`);
}

/** Rewrites the client's headers, in place, into the ones the hub gets (headers.ts). */
export function prepareHeaders(px: ProxyContext, req: IncomingMessage, websocket: boolean): void {
  const s = px.main.settings.identity;
  forwardRequestHeaders(req.headers, {
    websocket,
    identityHeader: s.header,
    altIdentityHeader: s.altHeader,
    kindHeaders: [s.kindHeader, s.altKindHeader],
    forwardIdentity: px.config.forwardIdentity,
    trusted: peerTrusted(px.main, req),
    peer: req.socket.remoteAddress,
    encrypted: req.socket instanceof TLSSocket && req.socket.encrypted,
  });
}

/** Connect and idle timers on the request to the hub; a timer that fires cuts it as a timeout. */
export function armTimeouts(px: ProxyContext, proxyReq: ClientRequest, x: Exchange): void {
  const arm = (socket: Socket): void => {
    if (socket.connecting) {
      // A new socket carries the pool's idle timeout (keep_alive_ms), and Node applies the
      // request's own only once connected: until then ours is the only timer.
      socket.setTimeout(0);
      const ms = px.config.connectTimeoutMs;
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
  const idle = px.config.idleTimeoutMs;
  if (idle > 0) {
    proxyReq.setTimeout(idle, () => {
      x.timeout = new UpstreamTimeoutError(x.bucket.name, 'idle', idle);
      proxyReq.destroy(x.timeout);
    });
  }
}

/** The client went away: count it once and let go of the hub's side. */
export function aborted(px: ProxyContext, x: Exchange): void {
  if (x.settled) return;
  x.settled = true;
  px.stats.clientAborts++;
  x.proxyReq?.destroy();
}

/** A sentence for the log and the page from a socket error's code. */
export function describeError(err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
      return 'connection reset';
    case 'EPIPE':
      return 'connection closed while sending';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'host unreachable';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host name not found';
    case 'ETIMEDOUT':
      return 'connection timed out';
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_INVALID_HEADER_TOKEN':
    case 'HPE_INVALID_CHUNK_SIZE':
      return 'invalid HTTP response';
    default:
      return err.code ?? 'connection failed';
  }
}

/** The failure to report for an error of the exchange: our own timeout first. */
export function upstreamError(x: Exchange, err: Error): ShardError {
  if (x.timeout !== undefined) return x.timeout;
  if (err instanceof ShardError) return err;
  return new UpstreamDownError(x.bucket.name, describeError(err), { cause: err });
}

/**
 * Counts and logs a hub failure; returns the request id its answer carries. `upstream` is the
 * address the exchange used (a reload may have changed the bucket's since).
 */
export function reportFailure(
  px: ProxyContext,
  req: IncomingMessage,
  bucket: BucketRef,
  err: ShardError,
  upstream: string | null,
): string {
  countFailure(px.stats, err, bucket);
  const id = errorRequestId(px.main, req);
  const cause = err.cause as NodeJS.ErrnoException | undefined;
  px.main.log.error(
    {
      event: 'proxy_failed',
      request_id: id,
      code: err.code,
      bucket: bucket.name,
      kind: bucket.kind,
      upstream,
      method: req.method,
      path: pathOnly(req.url),
      websocket: req.headers.upgrade !== undefined,
      cause: cause?.code ?? cause?.message,
    },
    err.message,
  );
  return id;
}
