/**
 * The signed `hub` cookie. With cookie.secret the value is `<bucket>.<base64url HMAC-SHA256 of
 * "<cookie name>=<bucket>">`, computed once per bucket at (re)load, so /auth still writes a
 * precomputed header. The sharder never routes by the cookie (the identity decides); the
 * signature lets whatever reads the cookie downstream trust it, and lets the sharder notice a
 * cookie the client forged or tampered with: such a cookie is ignored and logged at warn.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Logger } from '../log.js';
import type { BucketRef } from '../core/buckets.js';

/** An HMAC-SHA256 digest in unpadded base64url: 32 bytes, 43 characters. */
const SIGNATURE_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export class CookieSigner {
  private readonly key: Buffer;
  constructor(
    secret: string,
    readonly name: string,
  ) {
    this.key = Buffer.from(secret, 'utf8');
  }

  private mac(bucket: string): Buffer {
    return createHmac('sha256', this.key).update(`${this.name}=${bucket}`, 'utf8').digest();
  }

  /** The cookie value for a bucket. */
  sign(bucket: string): string {
    return `${bucket}.${this.mac(bucket).toString('base64url')}`;
  }

  /**
   * The bucket a value names when its signature is valid, else undefined. The signature must
   * be exactly what sign() writes: Buffer.from(x, 'base64url') skips characters outside the
   * alphabet and ignores the unused low bits of the last one, so `<good value>!!!` would decode
   * to the right digest. Only the canonical spelling is accepted.
   */
  verify(value: string): string | undefined {
    const dot = value.lastIndexOf('.');
    if (dot <= 0) return undefined;
    const bucket = value.slice(0, dot);
    const text = value.slice(dot + 1);
    if (!SIGNATURE_PATTERN.test(text)) return undefined;
    const given = Buffer.from(text, 'base64url');
    if (given.toString('base64url') !== text) return undefined;
    const want = this.mac(bucket);
    return given.length === want.length && timingSafeEqual(given, want) ? bucket : undefined;
  }
}

/** The value of cookie `name` in a Cookie header, or undefined. */
export function readCookie(header: string, name: string): string | undefined {
  let at = 0;
  while (at < header.length) {
    let end = header.indexOf(';', at);
    if (end === -1) end = header.length;
    const eq = header.indexOf('=', at);
    if (eq !== -1 && eq < end && header.slice(at, eq).trim() === name) return header.slice(eq + 1, end).trim();
    at = end + 1;
  }
  return undefined;
}

/**
 * Compares a `hub` cookie the client presented with the decision just made (`token` is the
 * bucket's signed value, http/answers.ts). Called only when the cookie is signed; costs nothing
 * when the request has no Cookie header (nginx's auth_request subrequest
 * passes the browser's headers, so /auth sees it too).
 */
export function checkPresentedCookie(
  log: Logger,
  req: IncomingMessage,
  name: string,
  bucket: BucketRef,
  signer: CookieSigner,
  token: string,
): void {
  const header = req.headers.cookie;
  if (header === undefined) return;
  const value = readCookie(header, signer.name);
  if (value === undefined || value === token) return;
  const named = signer.verify(value);
  if (named === undefined) {
    log.warn(
      {
        event: 'cookie_forged',
        kind: bucket.kind,
        name,
        bucket: bucket.name,
        remote: req.socket.remoteAddress,
        presented: value.slice(0, 80),
      },
      'a client presented a hub cookie with no valid signature: ignored',
    );
  } else {
    // Signed by us, for another bucket: the object was moved since; the answer replaces it.
    log.info(
      { event: 'cookie_stale', kind: bucket.kind, name, bucket: bucket.name, presented: named },
      'the hub cookie names another bucket: replaced',
    );
  }
}
