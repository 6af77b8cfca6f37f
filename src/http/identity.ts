/**
 * Reading the identity from a request. Pure functions of the request's headers and peer
 * address, so they can be tested without sockets. What a name may be is the core's rule
 * (core/names.ts); this module decides which header carries it and who may send it.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { BlockList } from 'node:net';
import { checkName, identityFailure as fail, NO_IDENTITY, type IdentityFailure } from '../core/names.js';
import { trustedProxies } from './trust.js';

export const UNTRUSTED = fail(
  403,
  'SHARD_ERR_UNTRUSTED_PROXY',
  'the identity header is accepted only from trusted proxies',
);
export const DUPLICATE = fail(400, 'SHARD_ERR_DUPLICATE_IDENTITY', 'the identity header appears more than once');
export const MISSPELLED = fail(
  400,
  'SHARD_ERR_AMBIGUOUS_IDENTITY',
  'the identity header is present with "_" and "-" spelled differently',
);
export const KIND_UNTRUSTED = fail(
  403,
  'SHARD_ERR_UNTRUSTED_PROXY',
  'the kind header is accepted only from trusted proxies',
);
export const KIND_DUPLICATE = fail(400, 'SHARD_ERR_DUPLICATE_KIND', 'the kind header appears more than once');
export const KIND_MISSPELLED = fail(
  400,
  'SHARD_ERR_AMBIGUOUS_KIND',
  'the kind header is present with "_" and "-" spelled differently',
);

export interface IdentitySettings {
  /** Lower-case header name as Node keys it. */
  readonly header: string;
  /** The same name with "_" and "-" swapped, or null when it has neither. */
  readonly altHeader: string | null;
  readonly maxLength: number;
  /** The peers that may set the identity and the kind (trust.ts). */
  readonly trusted: BlockList;
  /** Lower-case kind header (kind_header), or null when the kind is always the default one. */
  readonly kindHeader: string | null;
  readonly altKindHeader: string | null;
}

/** A header name with "_" and "-" swapped (nginx and others fold the two), or null when it has neither. */
function otherSpelling(lower: string): string | null {
  const alt = lower.replace(/[-_]/g, (c) => (c === '-' ? '_' : '-'));
  return alt === lower ? null : alt;
}

export function identitySettings(
  header: string,
  trusted: readonly string[],
  maxLength: number,
  kindHeader: string | null = null,
): IdentitySettings {
  const lower = header.toLowerCase();
  const kind = kindHeader === null ? null : kindHeader.toLowerCase();
  return {
    header: lower,
    altHeader: otherSpelling(lower),
    maxLength,
    trusted: trustedProxies(trusted),
    kindHeader: kind,
    altKindHeader: kind === null ? null : otherSpelling(kind),
  };
}

/** Counts how often a header (lower-case name) appears in the raw header list. */
function occurrences(rawHeaders: readonly string[], lower: string): number {
  let n = 0;
  for (let i = 0; i < rawHeaders.length; i += 2)
    if (rawHeaders[i]!.length === lower.length && rawHeaders[i]!.toLowerCase() === lower) n++;
  return n;
}

/** What to answer when a header that only a trusted proxy may send is sent wrongly. */
interface TrustedHeaderFailures {
  readonly untrusted: IdentityFailure;
  readonly duplicate: IdentityFailure;
  readonly misspelled: IdentityFailure;
}

const IDENTITY_FAILURES: TrustedHeaderFailures = { untrusted: UNTRUSTED, duplicate: DUPLICATE, misspelled: MISSPELLED };
const KIND_FAILURES: TrustedHeaderFailures = {
  untrusted: KIND_UNTRUSTED,
  duplicate: KIND_DUPLICATE,
  misspelled: KIND_MISSPELLED,
};

/**
 * The one rule for the headers a trusted proxy sets (the identity, the kind): the raw value,
 * undefined when absent, or the failure — present under both spellings, sent by an untrusted
 * peer, or sent more than once. `trusted` is computed once per connection by the caller.
 */
function readTrustedHeader(
  header: string,
  alt: string | null,
  headers: IncomingHttpHeaders,
  rawHeaders: readonly string[],
  trusted: boolean,
  f: TrustedHeaderFailures,
): string | undefined | IdentityFailure {
  const value = headers[header];
  if (alt !== null && headers[alt] !== undefined) return f.misspelled;
  if (value === undefined) return undefined;
  if (!trusted) return f.untrusted;
  if (typeof value !== 'string') return f.duplicate;
  // Node joins repeated headers with ", "; only then is the slower scan needed.
  if (value.includes(',') && occurrences(rawHeaders, header) > 1) return f.duplicate;
  return value;
}

/** The identity of a request: the validated name, or the failure to answer with. */
export function readIdentity(
  settings: IdentitySettings,
  headers: IncomingHttpHeaders,
  rawHeaders: readonly string[],
  trusted: boolean,
): string | IdentityFailure {
  const value = readTrustedHeader(settings.header, settings.altHeader, headers, rawHeaders, trusted, IDENTITY_FAILURES);
  if (value === undefined) return NO_IDENTITY;
  return typeof value === 'string' ? checkName(value, settings.maxLength) : value;
}

/**
 * The kind a request names: undefined for the default kind (no kind header configured, or none
 * sent), the raw header value, or the failure to answer with — the identity's trust rule.
 */
export function readKind(
  settings: IdentitySettings,
  headers: IncomingHttpHeaders,
  rawHeaders: readonly string[],
  trusted: boolean,
): string | undefined | IdentityFailure {
  if (settings.kindHeader === null) return undefined;
  return readTrustedHeader(settings.kindHeader, settings.altKindHeader, headers, rawHeaders, trusted, KIND_FAILURES);
}
