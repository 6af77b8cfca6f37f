/**
 * GET /metrics on the control listener: Prometheus text format. Who may scrape it is the gate's
 * `metrics` access (http/gate.ts): open unless metrics.token is set.
 */
import type { ControlRouter } from '../http/control.js';
import { sendError } from '../http/respond.js';
import { CONTENT_TYPE } from './registry.js';

export interface MetricsRouteDeps {
  /** Whether metrics are on (metrics.enabled; a restart applies a change). */
  readonly enabled: boolean;
  /** The Prometheus text: this process's, or the whole cluster's. */
  text(): Promise<string>;
}

export function registerMetricsRoute(router: ControlRouter, deps: MetricsRouteDeps): void {
  router.add(
    'GET',
    '/metrics',
    async ({ res }) => {
      if (!deps.enabled) return sendError(res, 404, 'SHARD_ERR_NOT_FOUND', 'metrics are off (metrics.enabled: false)');
      const text = await deps.text();
      res.writeHead(200, [
        'Content-Type',
        CONTENT_TYPE,
        'Content-Length',
        String(Buffer.byteLength(text)),
        'Cache-Control',
        'no-store',
      ]);
      res.end(text);
    },
    { access: 'metrics' },
  );
}
