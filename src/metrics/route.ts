/**
 * GET /metrics on the control listener: Prometheus text format. Open unless `metrics.token`
 * (or token_file, SHARDER_METRICS_TOKEN) is set; then it needs `Authorization: Bearer
 * <token>`, compared as SHA-256 digests in constant time, as the admin tokens are. Admin
 * tokens do not open it: Prometheus gets a token that can do nothing else.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ControlRouter } from '../http/control.js';
import { sendError } from '../http/respond.js';
import type { Logger } from '../log.js';
import { CONTENT_TYPE } from './registry.js';

export interface MetricsRouteDeps {
  /** Whether metrics are on (metrics.enabled; a restart applies a change). */
  readonly enabled: boolean;
  /** The digest of the token in force, or null when /metrics is open. */
  tokenHash(): Buffer | null;
  /** The Prometheus text: this process's, or the whole cluster's. */
  text(): Promise<string>;
  readonly log: Logger;
}

/** Whether the Authorization header carries the token whose SHA-256 digest is `hash`. */
export function bearerMatches(header: string | undefined, hash: Buffer): boolean {
  const m = header === undefined ? null : /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  const digest = createHash('sha256').update(m?.[1] ?? '', 'utf8').digest();
  return timingSafeEqual(digest, hash) && m !== null;
}

export function registerMetricsRoute(router: ControlRouter, deps: MetricsRouteDeps): void {
  router.add('GET', '/metrics', async ({ req, res }) => {
    if (!deps.enabled) return sendError(res, 404, 'SHARD_ERR_NOT_FOUND', 'metrics are off (metrics.enabled: false)');
    const hash = deps.tokenHash();
    if (hash !== null && !bearerMatches(req.headers.authorization, hash)) {
      deps.log.warn({ event: 'metrics_unauthorized', remote: req.socket.remoteAddress, has_authorization: req.headers.authorization !== undefined }, 'metrics scrape refused');
      res.setHeader('WWW-Authenticate', 'Bearer realm="sharder metrics"');
      return sendError(res, 401, 'SHARD_ERR_UNAUTHORIZED', 'this /metrics needs "Authorization: Bearer <metrics.token>"');
    }
    const text = await deps.text();
    res.writeHead(200, ['Content-Type', CONTENT_TYPE, 'Content-Length', String(Buffer.byteLength(text)), 'Cache-Control', 'no-store']);
    res.end(text);
  });
}
