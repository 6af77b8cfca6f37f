/**
 * The control listener's one authentication gate. Every route declares what it needs (an
 * `Access`); this module alone parses credentials, compares digests, counts failures and
 * answers 401 and 429, so that no route can be reached by a rule written differently.
 *
 * - `admin`: an admin token (admin.token, admin.tokens, SHARDER_ADMIN_TOKEN) as
 *   `Authorization: Bearer <token>`; the audit log names the token.
 * - `metrics`: open unless metrics.token is set, then that token as Bearer. Admin tokens do not
 *   open it: Prometheus gets a token that can do nothing else.
 * - `status`: loopback peers without a token when status.loopback_without_token (the default),
 *   else an admin token, as Bearer or as the password of HTTP Basic (a browser can ask for it).
 * - `open`: no credentials.
 * Tokens are compared as SHA-256 digests with timingSafeEqual against every candidate (no early
 * exit), and never logged.
 *
 * Failures are counted per source (trust.ts `sourceOf`: all of loopback is one source, IPv6 by
 * /64) in the one FailureLimiter of the process, whichever route failed. A source over the limit
 * gets 429 with Retry-After before its credentials are looked at, so no guess can be confirmed
 * while it waits. With `workers: N` each worker allows its share of the limit, so the whole
 * process group never allows more than the limit.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AdminToken } from '../config/types.js';
import type { Logger } from '../log.js';
import { pathOnly } from './listener.js';
import type { FailureLimiter } from './rate-limit.js';
import { sendError } from './respond.js';
import { isLoopback, sourceOf } from './trust.js';

export type Access = 'admin' | 'metrics' | 'status' | 'open';

/** The credentials in force (they change on reload). */
export interface GateSettings {
  readonly adminTokens: readonly AdminToken[];
  /** The digest of metrics.token, or null when /metrics is open. */
  readonly metricsTokenHash: Buffer | null;
  readonly statusLoopbackWithoutToken: boolean;
}

/** Who passed the gate: `api:<token name>`, `metrics`, or `anonymous`. */
export type Actor = string;

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * The token an Authorization header carries: `Bearer <token>`, or (where `basic`) the password
 * of `Basic <base64 user:password>`. A string explains why there is none.
 */
function presentedToken(header: string | undefined, basic: boolean): { token: string } | string {
  if (header === undefined)
    return basic
      ? 'missing "Authorization: Bearer <token>" (or Basic) header'
      : 'missing "Authorization: Bearer <token>" header';
  const bearer = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  if (bearer) return { token: bearer[1]! };
  const b = basic ? /^Basic[ ]+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(header) : null;
  if (b) {
    const decoded = Buffer.from(b[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return { token: colon === -1 ? decoded : decoded.slice(colon + 1) };
  }
  return basic
    ? 'the Authorization header must be "Bearer <token>" or Basic with the token as password'
    : 'the Authorization header must be "Bearer <token>"';
}

/** The name of the token whose digest matches, comparing against every candidate. */
function matchToken(token: string, candidates: readonly AdminToken[]): string | undefined {
  const digest = sha256(token);
  let found: string | undefined;
  for (const t of candidates) if (timingSafeEqual(digest, t.hash) && found === undefined) found = t.name;
  return found;
}

interface Requirement {
  readonly tokens: readonly AdminToken[];
  readonly basic: boolean;
  readonly realm: readonly string[];
  /** Said when no token is configured at all for this access. */
  readonly disabled: string;
  /** Prefix of the 401 message. */
  readonly what: string;
  readonly actor: (name: string) => Actor;
}

const ADMIN_DISABLED =
  'the admin API is disabled: no admin token is configured (admin.token, admin.token_file, admin.tokens or ' +
  'SHARDER_ADMIN_TOKEN)';

/** What an access needs from this request, or null when it may pass without credentials. */
function requirement(access: Access, s: GateSettings, peer: string | undefined): Requirement | null {
  switch (access) {
    case 'open':
      return null;
    case 'metrics':
      if (s.metricsTokenHash === null) return null;
      return {
        tokens: [{ name: 'metrics', hash: s.metricsTokenHash }],
        basic: false,
        realm: ['Bearer realm="sharder metrics"'],
        disabled: '',
        what: 'this /metrics needs "Authorization: Bearer <metrics.token>"',
        actor: () => 'metrics',
      };
    case 'status':
      if (s.statusLoopbackWithoutToken && isLoopback(peer)) return null;
      return {
        tokens: s.adminTokens,
        basic: true,
        realm: ['Basic realm="sharder status", charset="UTF-8"', 'Bearer realm="sharder"'],
        disabled: ADMIN_DISABLED,
        what: 'the status page needs an admin token from this address (Bearer, or as the Basic password)',
        actor: (n) => `api:${n}`,
      };
    case 'admin':
      return {
        tokens: s.adminTokens,
        basic: false,
        realm: ['Bearer realm="sharder"'],
        disabled: ADMIN_DISABLED,
        what: '',
        actor: (n) => `api:${n}`,
      };
  }
}

export class Gate {
  constructor(
    private readonly settings: () => GateSettings,
    readonly limiter: FailureLimiter,
    private readonly log: () => Logger,
  ) {}

  /**
   * Lets a request through (returns who it is) or answers it 401 or 429 (returns undefined).
   * Only requests that present credentials, or need them, are counted.
   */
  admit(req: IncomingMessage, res: ServerResponse, access: Access): Actor | undefined {
    const peer = req.socket.remoteAddress;
    const need = requirement(access, this.settings(), peer);
    if (need === null) return 'anonymous';
    const source = sourceOf(peer);
    const wait = this.limiter.retryAfter(source);
    if (wait > 0) {
      res.setHeader('Retry-After', String(wait));
      sendError(
        res,
        429,
        'SHARD_ERR_RATE_LIMITED',
        `too many failed authentications from this address: try again in ${wait} s`,
      );
      return undefined;
    }
    const given = presentedToken(req.headers.authorization, need.basic);
    const name =
      typeof given === 'string' || need.tokens.length === 0 ? undefined : matchToken(given.token, need.tokens);
    if (name !== undefined) return need.actor(name);
    const reason = need.tokens.length === 0 ? need.disabled : typeof given === 'string' ? given : 'invalid token';
    if (this.limiter.fail(source)) {
      this.log().warn(
        {
          event: 'api_rate_limited',
          source,
          remote: peer,
          failures: this.limiter.allowed,
          window_ms: this.limiter.windowMs,
        },
        'authentication failures from one source reached the limit: refusing it for the rest of the window',
      );
    }
    // The event names the route family, as the log reference lists them.
    this.log().warn(
      {
        event: access === 'admin' ? 'api_unauthorized' : `${access}_unauthorized`,
        method: req.method,
        path: pathOnly(req.url),
        remote: peer,
        reason,
      },
      'control request refused',
    );
    res.setHeader('WWW-Authenticate', need.realm);
    sendError(
      res,
      401,
      'SHARD_ERR_UNAUTHORIZED',
      need.what === '' ? reason : need.tokens.length === 0 ? need.disabled : `${need.what}: ${reason}`,
    );
    return undefined;
  }
}
