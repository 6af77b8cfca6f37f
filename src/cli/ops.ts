/**
 * What the admin commands share: a command made from an operation's description (its options,
 * parsing and usage), the operations module on the configured store, the acting user for the
 * audit log, and output helpers.
 */
import { userInfo } from 'node:os';
import type { Config } from '../config/types.js';
import { Operations } from '../ops/index.js';
import { type AnyOperation, type Param, type RequestOf, buildRequest, cliFlag, isPositional } from '../ops/spec.js';
import {
  CONFIG_OPTION,
  EXIT_OK,
  JSON_OPTION,
  UsageError,
  configFrom,
  type CliOption,
  type Command,
  type Io,
  type ParsedArgs,
} from './command.js';
import { withStore } from '../ops/with-store.js';

/** The audit actor: the user running the command (through sudo: the one who ran sudo). */
export function cliActor(env: NodeJS.ProcessEnv): string {
  let user = env.SUDO_USER;
  if (!user) {
    try {
      user = userInfo().username;
    } catch {
      user = env.USER ?? env.LOGNAME ?? 'unknown';
    }
  }
  return `cli:${user}`;
}

/** Runs `fn` with the operations on the configured store (opened unless `store` is false), closed afterwards. */
export function withOps<T>(config: Config, fn: (ops: Operations) => Promise<T>, store = true): Promise<T> {
  if (!store) return fn(Operations.withoutStore(config));
  return withStore(config, (s) => fn(new Operations({ store: s, config: () => config })));
}

export function str(args: ParsedArgs, key: string): string | undefined {
  return args.values[key] as string | undefined;
}

export function flag(args: ParsedArgs, key: string): boolean {
  return args.values[key] === true;
}

/** The CLI option of an operation's parameter: the same flag, type and doc everywhere. */
export function paramOption(p: Param): CliOption | undefined {
  const f = cliFlag(p);
  if (f === undefined) return undefined;
  return {
    flag: f.name,
    short: f.short,
    arg: p.type.isSwitch ? undefined : f.arg,
    doc: p.doc,
    column: f.column,
    type: p.type.doc,
    default: p.default,
  };
}

/** Where the safety flags and --reason go in the usage of the commands that have them. */
export const SAFETY_AND_REASON = ['stopServers', 'stopTimeoutMs', 'skipHubCheck', 'reason'] as const;

/** What a command adds to an operation: its text, and how it prints the result. */
export interface OpCommandDef<O extends AnyOperation> {
  name?: string;
  summary: string;
  synopsis: string;
  notes?: readonly string[];
  exitFailure?: string;
  /**
   * The usage order: parameter keys of the operation and options of the command's own;
   * default: --config, every parameter in order, --json. Each parameter that has a flag must
   * be listed exactly once.
   */
  options?: readonly (string | CliOption)[];
  /** Checks of the command's own options, before anything else. */
  check?: (args: ParsedArgs) => void;
  /** Prints the result and gives the exit status (default run). */
  print?: (c: RunContext<O>, result: Awaited<ReturnType<O['run']>>) => number | Promise<number>;
  /** Instead of running the operation and printing: the whole command. */
  run?: (c: RunContext<O>) => Promise<number>;
}

export interface RunContext<O extends AnyOperation> {
  req: RequestOf<O>;
  args: ParsedArgs;
  io: Io;
  config: Config;
  ops: Operations;
}

/** The operation's request from the command line: its argument, its flags, and the user. */
function cliRequest<O extends AnyOperation>(
  op: O,
  command: string,
  args: ParsedArgs,
  env: NodeJS.ProcessEnv,
): RequestOf<O> {
  const positional = op.params.find(isPositional);
  if (positional && args.positionals.length !== 1)
    throw new UsageError(`${command} takes exactly one ${positional.cli.positional}`);
  const req = buildRequest(
    op.params.filter((p) => p.cli !== false),
    'flag',
    (p) => (p === positional ? args.positionals[0] : args.values[cliFlag(p)!.name]),
    (p, where) => {
      throw new UsageError(`${command} needs ${where} ${p.name.toUpperCase()}`);
    },
  );
  for (const [a, b] of op.exclusive ?? []) {
    if (req[a] === true && req[b] === true) {
      const name = (k: string) => cliFlag(op.params.find((p) => p.key === k)!)!.name;
      throw new UsageError(`--${name(a)} and --${name(b)} exclude each other`);
    }
  }
  return { ...req, actor: cliActor(env) } as RequestOf<O>;
}

/** A command that runs one operation: options, parsing and usage come from its description. */
export function opCommand<O extends AnyOperation>(op: O, def: OpCommandDef<O>): Command {
  const name = def.name ?? op.name;
  const byKey = new Map(
    op.params.flatMap((p) => {
      const o = paramOption(p);
      return o ? [[p.key, o] as const] : [];
    }),
  );
  const order = def.options ?? [CONFIG_OPTION, ...byKey.keys(), JSON_OPTION];
  const options = order.map((o) => {
    if (typeof o !== 'string') return o;
    const found = byKey.get(o);
    if (!found) throw new Error(`internal: command ${name} lists "${o}", which is not a flag of operation ${op.name}`);
    return found;
  });
  const missing = [...byKey.keys()].filter((k) => order.filter((o) => o === k).length !== 1);
  if (missing.length > 0)
    throw new Error(
      `internal: command ${name} must list each flag of operation ${op.name} once: ${missing.join(', ')}`,
    );
  return {
    name,
    summary: def.summary,
    synopsis: def.synopsis,
    options,
    notes: def.notes,
    exitFailure: def.exitFailure,
    positionals: op.params.some(isPositional),
    async run(args, io) {
      def.check?.(args);
      const req = cliRequest(op, name, args, io.env);
      const config = configFrom(args, io);
      return withOps(
        config,
        async (ops) => {
          const c: RunContext<O> = { req, args, io, config, ops };
          if (def.run) return def.run(c);
          const result = (await op.run(ops, req)) as Awaited<ReturnType<O['run']>>;
          if (def.print) return def.print(c, result);
          json(io, result);
          return EXIT_OK;
        },
        op.store !== false,
      );
    },
  };
}

export function json(io: Io, value: unknown): void {
  io.out(`${JSON.stringify(value)}\n`);
}

/** Aligned columns; columns listed in `right` are right-aligned. The last column is not padded. */
export function table(rows: string[][], right: readonly number[] = []): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return `${rows
    .map((r) =>
      r
        .map((c, i) =>
          i === r.length - 1 && !right.includes(i)
            ? c
            : right.includes(i)
              ? c.padStart(widths[i]!)
              : c.padEnd(widths[i]!),
        )
        .join('  ')
        .trimEnd(),
    )
    .join('\n')}\n`;
}

/**
 * Writes to standard output with backpressure when it is a stream (a pipe to a slow reader
 * must not make a long output pile up in memory).
 */
export async function emit(io: Io, text: string): Promise<void> {
  const s = io.stdout;
  if (s === undefined) return io.out(text);
  if (!s.write(text)) await new Promise<void>((resolve) => s.once('drain', resolve));
}

export const plural = (n: number, word: string): string =>
  `${n} ${word}${n === 1 ? '' : /(s|sh|ch|x)$/.test(word) ? 'es' : 's'}`;
