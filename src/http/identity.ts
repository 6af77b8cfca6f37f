/**
 * Reading the identity from a request. Pure functions of the request's headers and peer
 * address, so they can be tested without sockets.
 *
 * What is accepted, and stored exactly as sent: 1 to `maxLength` bytes of UTF-8 with no
 * control characters and no leading or trailing white space. Everything else gets a 4xx and
 * is never stored. Node decodes header bytes as latin1; a non-ASCII name is re-decoded from
 * those bytes as UTF-8 (strictly: invalid UTF-8 is refused, never replaced).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { BlockList, isIPv4 } from 'node:net';

export interface IdentityFailure {
  readonly status: 400 | 401 | 403;
  readonly code: string;
  readonly message: string;
}

const fail = (status: 400 | 401 | 403, code: string, message: string): IdentityFailure => Object.freeze({ status, code, message });

export const NO_IDENTITY = fail(401, 'SHARD_ERR_NO_IDENTITY', 'no identity: the request has no identity header');
export const UNTRUSTED = fail(403, 'SHARD_ERR_UNTRUSTED_PROXY', 'the identity header is accepted only from trusted proxies');
export const DUPLICATE = fail(400, 'SHARD_ERR_DUPLICATE_IDENTITY', 'the identity header appears more than once');
export const MISSPELLED = fail(400, 'SHARD_ERR_AMBIGUOUS_IDENTITY', 'the identity header is present with "_" and "-" spelled differently');
export const TOO_LONG = fail(400, 'SHARD_ERR_IDENTITY_TOO_LONG', 'the identity is longer than identity.max_length bytes');
export const NOT_UTF8 = fail(400, 'SHARD_ERR_IDENTITY_ENCODING', 'the identity is not valid UTF-8');
export const CONTROL = fail(400, 'SHARD_ERR_IDENTITY_CHARACTERS', 'the identity contains control characters or surrounding white space');

export interface IdentitySettings {
  /** Lower-case header name as Node keys it. */
  readonly header: string;
  /** The same name with "_" and "-" swapped, or null when it has neither. */
  readonly altHeader: string | null;
  readonly maxLength: number;
  readonly trusted: BlockList;
}

export function identitySettings(header: string, trustedProxies: readonly string[], maxLength: number): IdentitySettings {
  const lower = header.toLowerCase();
  const alt = lower.replace(/[-_]/g, (c) => (c === '-' ? '_' : '-'));
  const trusted = new BlockList();
  for (const cidr of trustedProxies) {
    const [addr, prefix] = cidr.split('/') as [string, string | undefined];
    const type = isIPv4(addr) ? 'ipv4' : 'ipv6';
    trusted.addSubnet(addr, prefix === undefined ? (type === 'ipv4' ? 32 : 128) : Number(prefix), type);
  }
  return { header: lower, altHeader: alt === lower ? null : alt, maxLength, trusted };
}

/** Whether a peer address may set the identity. No address (a Unix socket) is local, so trusted. */
export function isTrusted(settings: IdentitySettings, address: string | undefined): boolean {
  if (address === undefined) return true;
  if (address.startsWith('::ffff:') && isIPv4(address.slice(7))) return settings.trusted.check(address.slice(7), 'ipv4');
  return settings.trusted.check(address, isIPv4(address) ? 'ipv4' : 'ipv6');
}

/** Printable ASCII with no white space at either end: the common case, checked by one regex. */
const PLAIN = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/;
/** C0 and C1 controls, DEL, and the Unicode line and paragraph separators. */
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Validates a raw header value (latin1-decoded bytes); returns the name or a failure. */
export function checkName(raw: string, maxLength: number): string | IdentityFailure {
  if (raw.length <= maxLength && PLAIN.test(raw)) return raw;
  if (raw.length === 0) return NO_IDENTITY;
  if (raw.length > maxLength) return TOO_LONG; // latin1: one char per byte
  let name = raw;
  if (/[^\x00-\x7f]/.test(raw)) {
    try {
      name = utf8.decode(Buffer.from(raw, 'latin1'));
    } catch {
      return NOT_UTF8;
    }
  }
  if (CONTROLS.test(name) || name.trim() !== name || name.trim() === '') return CONTROL;
  return name;
}

/** Counts how often a header (lower-case name) appears in the raw header list. */
function occurrences(rawHeaders: readonly string[], lower: string): number {
  let n = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.length === lower.length && rawHeaders[i]!.toLowerCase() === lower) n++;
  return n;
}

/**
 * The identity of a request: the validated name, or the failure to answer with. `trusted` is
 * whether the peer may set the identity (computed once per connection by the caller).
 */
export function readIdentity(
  settings: IdentitySettings,
  headers: IncomingHttpHeaders,
  rawHeaders: readonly string[],
  trusted: boolean,
): string | IdentityFailure {
  const value = headers[settings.header];
  if (settings.altHeader !== null && headers[settings.altHeader] !== undefined) return MISSPELLED;
  if (value === undefined) return NO_IDENTITY;
  if (!trusted) return UNTRUSTED;
  if (typeof value !== 'string') return DUPLICATE;
  // Node joins repeated headers with ", "; only then is the slower scan needed.
  if (value.includes(',') && occurrences(rawHeaders, settings.header) > 1) return DUPLICATE;
  return checkName(value, settings.maxLength);
}
