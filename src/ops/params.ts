/**
 * Parameter types of the admin operations: one parser per type, used for every way a value
 * arrives: a field of an API JSON body, an API query parameter, or a CLI flag. The messages
 * name the value the way its sender wrote it (`field "stop_timeout"`, `query parameter
 * "limit"`, `--stop-timeout`); API input that is wrong is a BadInputError (400), a flag that is
 * wrong a UsageError (exit 2).
 */
import { BadInputError, UsageError } from '../errors.js';

/** Where a value came from. */
export type Channel = 'body' | 'query' | 'flag';

export interface Where {
  readonly channel: Channel;
  /** The field, query parameter or flag name (without dashes). */
  readonly key: string;
}

export interface ParamType<T> {
  /** What a value is, for generated references. */
  readonly doc: string;
  /** A CLI flag of this type is a switch (parseArgs boolean), not a flag with a value. */
  readonly isSwitch?: boolean;
  /** `raw` is never undefined or (from a body) null: those mean "not given". */
  parse(raw: unknown, where: Where): T;
}

/** `field "x"`, `query parameter "x"` or `--x`, as the sender spelled it. */
export function label(where: Where): string {
  return where.channel === 'body'
    ? `field "${where.key}"`
    : where.channel === 'query'
      ? `query parameter "${where.key}"`
      : `--${where.key}`;
}

function fail(where: Where, message: string): never {
  throw where.channel === 'flag' ? new UsageError(message) : new BadInputError(message);
}

/** Free text; in a JSON body a non-empty string. */
export const text: ParamType<string> = {
  doc: 'string',
  parse(raw, where) {
    if (where.channel === 'body' && (typeof raw !== 'string' || raw === ''))
      fail(where, `${label(where)} must be a non-empty string`);
    return raw as string;
  },
};

/** true or false; in a query also 1 or 0; on the command line a switch. */
export const bool: ParamType<boolean> = {
  doc: 'boolean',
  isSwitch: true,
  parse(raw, where) {
    if (typeof raw === 'boolean') return raw;
    if (where.channel === 'query') {
      if (raw === 'true' || raw === '1') return true;
      if (raw === 'false' || raw === '0') return false;
    }
    return fail(where, `${label(where)} must be true or false`);
  },
};

/**
 * A whole number: a non-negative JSON number in a body (the operation checks its range), up to
 * nine digits in a query, and on the command line up to `flag.digits` digits, at least
 * `flag.min` (default 1). `scale` converts the unit (seconds given, milliseconds used).
 */
export function whole(opts: {
  doc: string;
  scale?: number;
  flag?: { digits?: number; min?: number; expect?: string };
}): ParamType<number> {
  const scale = opts.scale ?? 1;
  const digits = new RegExp(`^\\d{1,${opts.flag?.digits ?? 9}}$`);
  const min = opts.flag?.min ?? 1;
  const expect = opts.flag?.expect ?? 'a positive whole number';
  return {
    doc: opts.doc,
    parse(raw, where) {
      if (where.channel === 'body') {
        if (typeof raw !== 'number' || !Number.isFinite(raw) || raw < 0)
          fail(where, `${label(where)} must be a non-negative number`);
      } else if (where.channel === 'query') {
        if (typeof raw !== 'string' || !/^\d{1,9}$/.test(raw)) fail(where, `${label(where)} must be a whole number`);
      } else if (typeof raw !== 'string' || !digits.test(raw) || Number(raw) < min) {
        fail(where, `${label(where)} must be ${expect}, got "${String(raw)}"`);
      }
      return Number(raw) * scale;
    },
  };
}

/** One of a fixed list of words. */
export function choice<T extends string>(values: readonly T[]): ParamType<T> {
  return {
    doc: values.join(' | '),
    parse(raw, where) {
      if (!values.includes(raw as T))
        fail(where, `${where.channel === 'flag' ? '--' : ''}${where.key} must be one of ${values.join(', ')}`);
      return raw as T;
    },
  };
}
