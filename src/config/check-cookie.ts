/** cookie.secret / cookie.secret_file (SHARDER_COOKIE_SECRET): the key that signs the `hub` cookie. */
import { MIN_COOKIE_SECRET_BYTES } from './types.js';
import { type Problems, inlineSecret, secretFile } from './rules.js';

/** The secret, or null when the cookie is not signed. Never echoed in a problem. */
export function cookieSecret(p: Problems, v: Record<string, unknown>): string | null {
  if (v.secret !== undefined && v.secret !== null && v.secret_file !== undefined && v.secret_file !== null) {
    p.add('cookie.secret', 'give cookie.secret or cookie.secret_file, not both');
    return null;
  }
  const key = v.secret_file !== undefined && v.secret_file !== null ? 'cookie.secret_file' : 'cookie.secret';
  const secret =
    key === 'cookie.secret'
      ? v.secret === undefined || v.secret === null
        ? undefined
        : inlineSecret(p, v.secret, key)
      : secretFile(p, v.secret_file, key);
  if (secret === undefined) return null;
  if (Buffer.byteLength(secret, 'utf8') < MIN_COOKIE_SECRET_BYTES) {
    p.add(
      key,
      `is too short: use at least ${MIN_COOKIE_SECRET_BYTES} bytes of random text, e.g. from \`openssl rand -hex 32\``,
    );
    return null;
  }
  return secret;
}
