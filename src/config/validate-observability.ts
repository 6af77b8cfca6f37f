/**
 * Validation of the observability sections: `log.format`, `metrics` (and its optional bearer
 * token) and `status`. The metrics token is read here from the config, a file or the
 * environment, kept only as its SHA-256 digest, and never echoed in a message.
 */
import { createHash } from 'node:crypto';
import {
  type LogFormat, type RawConfig,
  type ListenAddress,
  DEFAULT_LOG_FORMAT, DEFAULT_METRICS_ENABLED, DEFAULT_METRICS_GC, DEFAULT_METRICS_LISTEN, DEFAULT_STATUS_LOOPBACK_WITHOUT_TOKEN, DEFAULT_STATUS_REFRESH_SECONDS,
  LOG_FORMATS, MIN_METRICS_TOKEN_LENGTH,
} from './types.js';
import { checkTokenText, inlineSecret, readSecretFile } from './validate-ops.js';
import { type Problems, bool, describe, listen, section } from './validate.js';

/** Longest status page refresh interval, in seconds. */
const MAX_STATUS_REFRESH_SECONDS = 3600;

export function logFormat(p: Problems, v: unknown): LogFormat {
  if (v === undefined) return DEFAULT_LOG_FORMAT;
  if (!LOG_FORMATS.includes(v as LogFormat)) {
    p.add('log.format', `must be one of ${LOG_FORMATS.join(', ')} (auto: pretty on a terminal, journal under systemd, JSON otherwise), got ${describe(v)}`);
    return DEFAULT_LOG_FORMAT;
  }
  return v as LogFormat;
}

export function metricsSection(p: Problems, raw: RawConfig): { enabled: boolean; tokenHash: Buffer | null; gc: boolean; listen: ListenAddress | null } {
  const m = section(p, raw, 'metrics');
  const enabled = bool(p, m.enabled, 'metrics.enabled', DEFAULT_METRICS_ENABLED);
  let token: string | undefined;
  if (m.token !== undefined && m.token_file !== undefined) {
    p.add('metrics.token', 'give metrics.token or metrics.token_file, not both');
  } else if (m.token !== undefined || m.token_file !== undefined) {
    const key = m.token !== undefined ? 'metrics.token' : 'metrics.token_file';
    const t = m.token !== undefined ? inlineSecret(p, m.token, key) : readSecretFile(p, m.token_file, key);
    if (t !== undefined && checkTokenText(p, t, key, MIN_METRICS_TOKEN_LENGTH)) token = t;
  }
  const gc = bool(p, m.gc, 'metrics.gc', DEFAULT_METRICS_GC);
  const where = m.listen ?? DEFAULT_METRICS_LISTEN;
  const address = where === 'off' ? null : listen(p, where, 'metrics.listen', '127.0.0.1:0');
  if (address !== null && !enabled) p.add('metrics.listen', 'needs metrics.enabled: true (it serves only /metrics)');
  return { enabled, tokenHash: token === undefined ? null : createHash('sha256').update(token, 'utf8').digest(), gc, listen: address };
}

export function statusSection(p: Problems, raw: RawConfig): { loopbackWithoutToken: boolean; refreshSeconds: number } {
  const s = section(p, raw, 'status');
  let refreshSeconds = DEFAULT_STATUS_REFRESH_SECONDS;
  if (s.refresh_seconds !== undefined) {
    const v = s.refresh_seconds;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_STATUS_REFRESH_SECONDS) {
      p.add('status.refresh_seconds', `must be a whole number from 0 (no refresh) to ${MAX_STATUS_REFRESH_SECONDS}, got ${describe(v)}`);
    } else refreshSeconds = v;
  }
  return {
    loopbackWithoutToken: bool(p, s.loopback_without_token, 'status.loopback_without_token', DEFAULT_STATUS_LOOPBACK_WITHOUT_TOKEN),
    refreshSeconds,
  };
}
