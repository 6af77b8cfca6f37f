/**
 * Checks of what the main listener serves and how: workers, the proxy section, the identity
 * and kind headers, the cookie name and the /shard redirect. Each check takes what a schema row
 * cannot say (a URL's shape, a rule between two keys); defaults and ranges come from the rows.
 */
import { availableParallelism } from 'node:os';
import {
  type Problems,
  TOKEN_PATTERN,
  boolKey,
  checkCidr,
  describe,
  headerSafeUrl,
  intKey,
  str,
  strKey,
  stringList,
} from './rules.js';
import type { ProxyConfig, RawConfig } from './types.js';

/** `workers`: a whole number, or "auto" for one per CPU. */
export function workers(p: Problems, v: unknown): number {
  const row = p.keys.row('workers');
  const [min, max] = row.range!;
  const dflt = row.default as number;
  if (v === 'auto') return Math.min(availableParallelism(), max);
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    p.add('workers', `must be "auto" or a whole number from ${min} to ${max}, got ${describe(v)}`);
    return dflt;
  }
  return v;
}

/** A header name (identity.header, kind_header): RFC 9110 token characters. */
export function headerName(p: Problems, v: unknown, key: string): string {
  const header = strKey(p, v, key);
  if (!TOKEN_PATTERN.test(header)) p.add(key, `is not a valid header name: ${describe(header)}`);
  return header;
}

/** `identity.trusted_proxies`: each entry an address or CIDR range. */
export function trustedProxies(p: Problems, v: unknown): readonly string[] {
  const key = 'identity.trusted_proxies';
  const list = stringList(p, v, key, p.keys.row(key).default as readonly string[]);
  list.forEach((c, i) => {
    const err = checkCidr(c);
    if (err) p.add(`${key}[${i}]`, err);
  });
  return list;
}

/** `cookie.name`: RFC 9110 token characters. */
export function cookieName(p: Problems, v: unknown): string {
  const name = strKey(p, v, 'cookie.name');
  if (!TOKEN_PATTERN.test(name)) p.add('cookie.name', `is not a valid cookie name: ${describe(name)}`);
  return name;
}

/** `shard.redirect`: a URL template with `{bucket}` (and `{kind}`), safe to send in Location. */
export function shardRedirect(p: Problems, v: unknown): string | null {
  if (v === undefined || v === null) return null;
  const redirect = str(p, v, 'shard.redirect', '');
  if (redirect === '') return null;
  if (!headerSafeUrl(p, 'shard.redirect', redirect)) return null;
  try {
    new URL(redirect.replaceAll('{bucket}', 'b').replaceAll('{kind}', 'k'), 'http://localhost/');
  } catch {
    p.add('shard.redirect', `must be a URL template such as "https://{bucket}/jupyter/hub", got ${describe(redirect)}`);
  }
  return redirect;
}

/**
 * `kind_header`: null or "off" (the environment cannot say null) means none, every request is
 * of default_kind. It must differ from identity.header in either spelling: nginx folds them.
 */
export function kindHeader(p: Problems, v: unknown, identityHeader: string): string | null {
  const kindHeader =
    v === null || v === 'off'
      ? null
      : str(p, v, 'kind_header', (p.keys.row('kind_header').default as string | null) ?? '') || null;
  if (kindHeader !== null && !TOKEN_PATTERN.test(kindHeader))
    p.add('kind_header', `is not a valid header name: ${describe(kindHeader)}`);
  if (
    kindHeader !== null &&
    [identityHeader, identityHeader.replace(/[-_]/g, (c) => (c === '-' ? '_' : '-'))].some(
      (h) => h.toLowerCase() === kindHeader.toLowerCase(),
    )
  ) {
    p.add('kind_header', 'must differ from identity.header (in either "_" or "-" spelling)');
  }
  return kindHeader;
}

/** `proxy.login_url`: an http(s) URL or a path on this host, optionally with `{next}`. */
export function loginUrl(p: Problems, v: unknown): string | null {
  if (v === undefined || v === null) return p.keys.row('proxy.login_url').default as string | null;
  const text = str(p, v, 'proxy.login_url', '');
  if (text === '' || !headerSafeUrl(p, 'proxy.login_url', text)) return null;
  const filled = text.replaceAll('{next}', 'x');
  let ok: boolean;
  if (filled.startsWith('/') && !filled.startsWith('//')) ok = !/[\s\\]/.test(filled);
  else {
    try {
      const u = new URL(filled);
      ok = (u.protocol === 'http:' || u.protocol === 'https:') && !u.username && !u.password;
    } catch {
      ok = false;
    }
  }
  if (!ok)
    p.add(
      'proxy.login_url',
      'must be an http:// or https:// URL or a path starting with "/" (optionally with {next}, the requested ' +
        `URL), got ${describe(v)}`,
    );
  return ok ? text : null;
}

export function proxySection(p: Problems, r: RawConfig): ProxyConfig {
  return {
    loginUrl: loginUrl(p, r.login_url),
    connectTimeoutMs: intKey(p, r.connect_timeout_ms, 'proxy.connect_timeout_ms'),
    idleTimeoutMs: intKey(p, r.idle_timeout_ms, 'proxy.idle_timeout_ms'),
    websocketIdleTimeoutMs: intKey(p, r.websocket_idle_timeout_ms, 'proxy.websocket_idle_timeout_ms'),
    keepAliveMs: intKey(p, r.keep_alive_ms, 'proxy.keep_alive_ms'),
    maxFreeSockets: intKey(p, r.max_free_sockets, 'proxy.max_free_sockets'),
    forwardIdentity: boolKey(p, r.forward_identity, 'proxy.forward_identity'),
  };
}
