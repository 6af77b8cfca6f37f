/**
 * Counters of what proxy mode did, since start: a plain object the metrics endpoint exports as
 * it is. `websocketsOpen` is a gauge, the rest only grow.
 */
import type { ShardError } from '../errors.js';
import type { BucketRef } from '../core/buckets.js';

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
    requests: 0,
    websockets: 0,
    websocketsOpen: 0,
    refused: 0,
    loginRedirects: 0,
    retries: 0,
    clientAborts: 0,
    errors: { SHARD_ERR_UPSTREAM_DOWN: 0, SHARD_ERR_UPSTREAM_TIMEOUT: 0, SHARD_ERR_NO_UPSTREAM: 0 },
    errorsByHub: {},
  };
}

/** Counts a hub failure, overall and by hub. */
export function countFailure(stats: ProxyStats, err: ShardError, bucket: BucketRef): void {
  stats.errors[err.code] = (stats.errors[err.code] ?? 0) + 1;
  const hub = (stats.errorsByHub[`${bucket.kind}/${bucket.name}`] ??= {});
  hub[err.code] = (hub[err.code] ?? 0) + 1;
}
