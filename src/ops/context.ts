/**
 * What every operation needs, and the checks they share. The CLI builds a context around its
 * own store connection; the server builds one around the running store, with `changed`
 * dropping its cache entries (changes made on its own connection are not seen by its watcher).
 */
import { BadInputError, NoSuchBucketError, UnknownKindError } from '../errors.js';
import type { BucketConfig, Config, KindConfig } from '../config/types.js';
import { checkName } from '../core/names.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/types.js';
import { HubClient, type HubClientOptions } from './hub-api.js';

export interface OpsContext {
  readonly store: Store;
  /** The configuration in force (the server's changes on reload). */
  config(): Config;
  /** Called after assignments changed through this context: `name` null means any of the kind. */
  readonly changed?: ((kind: string, name: string | null) => void) | undefined;
  readonly log?: Logger | undefined;
  /** Options for JupyterHub API calls (tests pass a short poll interval). */
  readonly hub?: (HubClientOptions & { stopPollMs?: number }) | undefined;
}

/** Who asks, and why: recorded in the audit log. */
export interface Who {
  /** `cli:<os user>` or `api:<token name>`. */
  readonly actor: string;
  readonly reason?: string | null | undefined;
}

/** Longest free-text reason kept in the audit log. */
export const MAX_REASON_LENGTH = 1000;

export function checkReason(reason: string | null | undefined): string | null {
  if (reason === undefined || reason === null || reason === '') return null;
  if (reason.length > MAX_REASON_LENGTH)
    throw new BadInputError(`the reason is longer than ${MAX_REASON_LENGTH} characters`);
  if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(reason))
    throw new BadInputError('the reason contains control characters');
  return reason;
}

/** The kind's name: the given one, or the configured default. */
export function kindName(ctx: OpsContext, kind: string | undefined): string {
  return kind ?? ctx.config().defaultKind;
}

/** The configured kind, or UnknownKindError. */
export function configuredKind(ctx: OpsContext, kind: string | undefined): KindConfig {
  const name = kindName(ctx, kind);
  const k = ctx.config().kinds.get(name);
  if (!k) throw new UnknownKindError(name);
  return k;
}

/**
 * A kind that may be read or cleaned up: configured, or still present in the store (after it
 * was removed from the configuration).
 */
export async function knownKind(ctx: OpsContext, kind: string | undefined): Promise<string> {
  const name = kindName(ctx, kind);
  if (ctx.config().kinds.has(name)) return name;
  if ((await ctx.store.kinds()).includes(name)) return name;
  throw new UnknownKindError(name);
}

/** The configured bucket, or NoSuchBucketError naming the configured ones. */
export function configuredBucket(kind: KindConfig, bucket: string): BucketConfig {
  const b = kind.buckets.find((x) => x.name === bucket);
  if (!b)
    throw new NoSuchBucketError(
      kind.name,
      bucket,
      kind.buckets.map((x) => x.name),
    );
  return b;
}

/** Object names follow the identity rules: what /auth would accept is what may be stored. */
export function checkObjectName(ctx: OpsContext, name: string): string {
  const checked = checkName(Buffer.from(name, 'utf8').toString('latin1'), ctx.config().identity.maxLength);
  if (typeof checked !== 'string')
    throw new BadInputError(
      `invalid name ${JSON.stringify(name.length > 80 ? `${name.slice(0, 80)}…` : name)}: ${checked.message}`,
    );
  return checked;
}

/** The JupyterHub client of a bucket, or undefined when it has no hub_api. */
export function hubClient(ctx: OpsContext, kind: string, bucket: string): HubClient | undefined {
  const b = ctx
    .config()
    .kinds.get(kind)
    ?.buckets.find((x) => x.name === bucket);
  return b?.hubApi ? new HubClient(bucket, b.hubApi, ctx.hub) : undefined;
}

/** Opaque pagination cursors: base64url JSON, bound to the query that made them. */
export function encodeCursor(value: Record<string, unknown>): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): Record<string, unknown> {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new BadInputError('invalid cursor: pass next_cursor from the previous page unchanged');
}

export function checkLimit(limit: number | undefined, dflt: number, max: number): number {
  if (limit === undefined) return dflt;
  if (!Number.isInteger(limit) || limit < 1 || limit > max)
    throw new BadInputError(`limit must be a whole number from 1 to ${max}, got ${limit}`);
  return limit;
}

/** Runs `fn` over `items` with at most `n` at a time; results in input order. */
export async function mapLimit<T, R>(items: readonly T[], n: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
  return out;
}
