/**
 * Header rules of proxy mode, as pure functions of header lists (no sockets), in the manner of
 * http-proxy-3's lib/http-proxy/common.ts: what is forwarded to a hub, what comes back.
 */
import type { IncomingHttpHeaders } from 'node:http';

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) and their non-standard relatives: they describe one
 * connection and are never passed on. `Expect` is answered by Node itself (100 Continue), so it
 * is consumed here too. `Transfer-Encoding` is not in this list for requests: Node's client
 * re-frames the body from it (chunked stays chunked).
 */
const REQUEST_HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'upgrade',
  'proxy-authorization',
  'expect',
];
const RESPONSE_HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-authenticate',
]);

/**
 * Headers that describe where a request came from. From an untrusted peer they are lies; from a
 * trusted proxy (nginx, an authenticating proxy) they are appended to.
 */
const FORWARDING = [
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'x-real-ip',
];

const KEPT_DESPITE_CONNECTION = new Set(['host', 'content-length', 'transfer-encoding', 'upgrade']);

/** Lower-case header names listed in a Connection header value. */
export function connectionTokens(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const text = Array.isArray(value) ? value.join(',') : value;
  return text
    .split(',')
    .map((t) => t.trim().toLowerCase())
    .filter((t) => t !== '');
}

export interface ForwardOptions {
  /** A websocket handshake: `Connection: Upgrade` and `Upgrade: websocket` are kept. */
  readonly websocket: boolean;
  /** Lower-case identity header, and its other spelling (`_`/`-` swapped) or null. */
  readonly identityHeader: string;
  readonly altIdentityHeader: string | null;
  /** The kind header in both spellings (null when none is configured): for the sharder, never for a hub. */
  readonly kindHeaders: readonly (string | null)[];
  /** Pass the identity on to the hub (as the client's proxy sent it), or strip it. */
  readonly forwardIdentity: boolean;
  /** Whether the peer is a trusted proxy (its forwarding headers are kept and appended to). */
  readonly trusted: boolean;
  /** The peer's address (undefined on a Unix socket). */
  readonly peer: string | undefined;
  /** Whether the client connection is TLS. */
  readonly encrypted: boolean;
}

/**
 * Rewrites a request's headers, in place, into the ones sent to the hub: hop-by-hop headers
 * dropped, identity kept or stripped, `X-Forwarded-For/Proto/Host` set. `Host` is kept as the
 * client sent it (JupyterHub builds its redirects and OAuth callbacks from it).
 */
export function forwardRequestHeaders(h: IncomingHttpHeaders, o: ForwardOptions): void {
  for (const name of connectionTokens(h.connection)) {
    // Headers named in Connection are hop-by-hop too, except the ones that must survive: the
    // body's framing (without it a chunked DELETE body would be read by the hub as a second,
    // smuggled request), Host, and the identity (its presence is decided by forwardIdentity).
    if (!KEPT_DESPITE_CONNECTION.has(name) && name !== o.identityHeader) delete h[name];
  }
  for (const name of REQUEST_HOP_BY_HOP) delete h[name];
  if (o.websocket) {
    h.connection = 'Upgrade';
    h.upgrade = 'websocket';
  }
  if (!o.forwardIdentity) delete h[o.identityHeader];
  if (o.altIdentityHeader !== null) delete h[o.altIdentityHeader];
  for (const name of o.kindHeaders) if (name !== null) delete h[name];

  if (!o.trusted) for (const name of FORWARDING) delete h[name];
  const peer = o.peer ?? 'unix';
  const xff = h['x-forwarded-for'];
  h['x-forwarded-for'] = typeof xff === 'string' && xff !== '' ? `${xff}, ${peer}` : peer;
  // http/https even for websockets: tornado (JupyterHub) ignores any other value.
  if (typeof h['x-forwarded-proto'] !== 'string') h['x-forwarded-proto'] = o.encrypted ? 'https' : 'http';
  if (typeof h['x-forwarded-host'] !== 'string' && h.host !== undefined) h['x-forwarded-host'] = h.host;
}

/**
 * The response headers for the client, as a flat [name, value, …] list: the hub's, in its order
 * and spelling and with repeated headers (Set-Cookie) kept, minus hop-by-hop ones, plus our
 * cookie appended after the hub's own.
 */
export function responseHeaders(rawHeaders: readonly string[], cookie: string | null): string[] {
  let dropped: Set<string> | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.length === 10 && rawHeaders[i]!.toLowerCase() === 'connection') {
      dropped ??= new Set(RESPONSE_HOP_BY_HOP);
      for (const t of connectionTokens(rawHeaders[i + 1])) if (t !== 'set-cookie') dropped.add(t);
    }
  }
  const drop = dropped ?? RESPONSE_HOP_BY_HOP;
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (!drop.has(name.toLowerCase())) out.push(name, rawHeaders[i + 1]!);
  }
  if (cookie !== null) out.push('Set-Cookie', cookie);
  return out;
}

/**
 * Whether a client prefers JSON to a page: it names a JSON type and not HTML (browsers
 * navigating send text/html; fetch() and API clients send application/json or nothing useful).
 */
export function wantsJson(accept: string | undefined): boolean {
  return accept !== undefined && /json/i.test(accept) && !/text\/html/i.test(accept);
}
