/**
 * How an admin operation is described, once: its name, its parameters (type, where the API
 * and the CLI take each one, doc), the API route it answers on, and what it runs. The API's
 * route table (src/http/api.ts), the CLI's options, parsing and usage text (src/cli) and the
 * CLI reference (docs/cli.md) are all derived from these descriptions (src/ops/operations.ts).
 */
import type { Who } from './context.js';
import type { Operations } from './index.js';
import { type Channel, type ParamType, label } from './params.js';

/** How the CLI takes a parameter as a flag. */
export interface CliFlag {
  /** The flag without dashes (default: the API name with `-` for `_`). */
  readonly name?: string;
  readonly short?: string;
  /** The value's placeholder in the usage text (`B`, `N`); a switch has none. */
  readonly arg?: string;
  /** Usage column of the doc text (default 22): a group of long flags aligns further out. */
  readonly column?: number;
}

export interface Param {
  /** The request field it fills. */
  readonly key: string;
  /** Its API name (body field or query parameter), snake_case. */
  readonly name: string;
  readonly type: ParamType<unknown>;
  /** One line (or a few) for the usage text and the reference; mentions the default. */
  readonly doc: string | readonly string[];
  /** The default the operation applies when the value is not given, for the reference. */
  readonly default?: string | number | boolean;
  readonly required?: boolean;
  /**
   * API: `path` for a `:segment` of the route, false when the API does not take it; default: the
   * route's body or query.
   */
  readonly api?: 'path' | false;
  /** CLI: a flag (default), one positional argument (`what` names it in errors), or false. */
  readonly cli?: CliFlag | { readonly positional: string } | false;
}

export interface ApiRoute<Res> {
  readonly method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  /** `:name` segments are path parameters. */
  readonly path: string;
  /** Where the other parameters are: the JSON body or the query string. */
  readonly from: 'body' | 'query';
  /** The status of a success (default 200). */
  readonly status?: (result: Awaited<Res>) => number;
}

export interface Operation<Req = never, Res = unknown> {
  readonly name: string;
  readonly params: readonly Param[];
  /** False for an operation that works on the configuration alone (backup). */
  readonly store?: false;
  /** Parameter keys the CLI refuses together (`--a and --b exclude each other`). */
  readonly exclusive?: readonly (readonly [string, string])[];
  readonly api?: ApiRoute<Res>;
  /** Runs it: a promise of the result, or (export) a stream of lines. */
  run(ops: Operations, req: Req & Who): Res;
}

/** Declares an operation: the request type is given, the result type is that of `run`. */
export function operation<Req>(): <Res>(op: Operation<Req, Res>) => Operation<Req, Res> {
  return (op) => op;
}

/** The request an operation's `run` takes. */
export type RequestOf<O> = O extends { run(ops: Operations, req: infer R): unknown } ? R : never;

/** An operation of any request and result type, for tables of them. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyOperation = Operation<any, any>;

export function isPositional(p: Param): p is Param & { cli: { positional: string } } {
  return typeof p.cli === 'object' && 'positional' in p.cli;
}

export function cliFlag(p: Param): (CliFlag & { name: string }) | undefined {
  if (p.cli === false || isPositional(p)) return undefined;
  const flag = (p.cli ?? {}) as CliFlag;
  return { ...flag, name: flag.name ?? p.name.replace(/_/g, '-') };
}

/**
 * Builds an operation's request from raw values: `raw(p)` gives each parameter's value as it
 * came (undefined or null: not given), parsed by the parameter's type with messages that name
 * it the way `channel` spells it; `missing(p)` reports a required one that is absent.
 */
export function buildRequest(
  params: readonly Param[],
  channel: Channel,
  raw: (p: Param) => unknown,
  missing: (p: Param, where: string) => never,
): Record<string, unknown> {
  const req: Record<string, unknown> = {};
  for (const p of params) {
    const v = raw(p);
    const key = channel === 'flag' ? (cliFlag(p)?.name ?? p.name) : p.name;
    if (v === undefined || v === null) {
      if (p.required) missing(p, label({ channel, key }));
      continue;
    }
    req[p.key] = p.type.parse(v, { channel, key });
  }
  return req;
}
