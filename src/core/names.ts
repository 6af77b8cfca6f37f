/**
 * The name rules: what may be an object's name. /auth accepts exactly what may be stored, and
 * every admin path (API, CLI, import) checks names with the same function.
 *
 * What is accepted, and stored exactly as sent: 1 to `maxLength` bytes of UTF-8 with no
 * control characters and no leading or trailing white space. A name arrives as a header
 * value, which Node decodes as latin1; a non-ASCII name is re-decoded from those bytes as
 * UTF-8 (strictly: invalid UTF-8 is refused, never replaced).
 * Everything else gets a 4xx and is never stored.
 */

/** Why a request's identity (or kind) is refused: the status and stable code to answer with. */
export interface IdentityFailure {
  readonly status: 400 | 401 | 403;
  readonly code: string;
  readonly message: string;
}

export const identityFailure = (status: 400 | 401 | 403, code: string, message: string): IdentityFailure =>
  Object.freeze({ status, code, message });

export const NO_IDENTITY = identityFailure(
  401,
  'SHARD_ERR_NO_IDENTITY',
  'no identity: the request has no identity header',
);
export const TOO_LONG = identityFailure(
  400,
  'SHARD_ERR_IDENTITY_TOO_LONG',
  'the identity is longer than identity.max_length bytes',
);
export const NOT_UTF8 = identityFailure(400, 'SHARD_ERR_IDENTITY_ENCODING', 'the identity is not valid UTF-8');
export const CONTROL = identityFailure(
  400,
  'SHARD_ERR_IDENTITY_CHARACTERS',
  'the identity contains control characters or surrounding white space',
);

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
