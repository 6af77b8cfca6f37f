/**
 * Validation of the observability sections: `metrics` (and its optional bearer token) and
 * `status`. The metrics token comes from the config, a file (read by the loader) or the
 * environment, is kept only as its SHA-256 digest, and is never echoed in a message.
 */
import { createHash } from 'node:crypto';
import {
  type Problems,
  boolKey,
  checkTokenText,
  describe,
  inlineSecret,
  listen,
  section,
  secretFile,
} from './rules.js';
import { type ListenAddress, type RawConfig, MIN_METRICS_TOKEN_LENGTH } from './types.js';

export function metricsSection(
  p: Problems,
  raw: RawConfig,
): { enabled: boolean; tokenHash: Buffer | null; gc: boolean; listen: ListenAddress | null } {
  const m = section(p, raw, 'metrics');
  const enabled = boolKey(p, m.enabled, 'metrics.enabled');
  let token: string | undefined;
  if (m.token !== undefined && m.token_file !== undefined) {
    p.add('metrics.token', 'give metrics.token or metrics.token_file, not both');
  } else if (m.token !== undefined || m.token_file !== undefined) {
    const key = m.token !== undefined ? 'metrics.token' : 'metrics.token_file';
    const t = m.token !== undefined ? inlineSecret(p, m.token, key) : secretFile(p, m.token_file, key);
    if (t !== undefined && checkTokenText(p, t, key, MIN_METRICS_TOKEN_LENGTH)) token = t;
  }
  const gc = boolKey(p, m.gc, 'metrics.gc');
  const where = m.listen ?? p.keys.row('metrics.listen').default;
  const address = where === 'off' ? null : listen(p, where, 'metrics.listen', '127.0.0.1:0');
  if (address !== null && !enabled) p.add('metrics.listen', 'needs metrics.enabled: true (it serves only /metrics)');
  return {
    enabled,
    tokenHash: token === undefined ? null : createHash('sha256').update(token, 'utf8').digest(),
    gc,
    listen: address,
  };
}

export function statusSection(p: Problems, raw: RawConfig): { loopbackWithoutToken: boolean; refreshSeconds: number } {
  const s = section(p, raw, 'status');
  const row = p.keys.row('status.refresh_seconds');
  const [min, max] = row.range!;
  let refreshSeconds = row.default as number;
  if (s.refresh_seconds !== undefined) {
    const v = s.refresh_seconds;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      p.add('status.refresh_seconds', `must be a whole number from ${min} (no refresh) to ${max}, got ${describe(v)}`);
    } else refreshSeconds = v;
  }
  return {
    loopbackWithoutToken: boolKey(p, s.loopback_without_token, 'status.loopback_without_token'),
    refreshSeconds,
  };
}
