import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, ShardError, UsageError } from '../errors.js';

export { UsageError };
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/types.js';

/** Exit statuses a shell user can branch on. */
export const EXIT_OK = 0;
/** The operation failed (store unavailable, not found, …). */
export const EXIT_FAILURE = 1;
/** Bad usage or bad configuration: nothing was done. */
export const EXIT_USAGE = 2;
/** What each exit status means, for `sharder --help` and the reference. */
export const EXIT_MEANINGS: readonly (readonly [number, string])[] = [
  [EXIT_OK, 'success'],
  [EXIT_FAILURE, 'the operation failed'],
  [EXIT_USAGE, 'bad usage or configuration'],
];

type Options = NonNullable<ParseArgsConfig['options']>;

export interface Io {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
  /** Standard output as a stream, for long outputs written with backpressure (export). */
  stdout?: NodeJS.WritableStream;
  /** Standard input, for commands that read FILE "-". */
  stdin?: NodeJS.ReadableStream;
}

/** One option of a command, described once: its parsing, its usage line and its reference entry come from here. */
export interface CliOption {
  /** The flag without dashes. */
  readonly flag: string;
  readonly short?: string | undefined;
  /** The value's placeholder (`FILE`, `N`); a switch has none. */
  readonly arg?: string | undefined;
  /** The usage text: one line, or a few (continued under the first). */
  readonly doc: string | readonly string[];
  /** Usage column of the doc (default 22; a longer flag is followed by one space). */
  readonly column?: number | undefined;
  /** May be given several times. */
  readonly multiple?: boolean | undefined;
  /** For the reference: what the value is, and its default. */
  readonly type: string;
  readonly default?: string | number | boolean | undefined;
}

export interface Command {
  readonly name: string;
  /** One line for `sharder --help`. */
  readonly summary: string;
  /** The first usage line: `sharder NAME ARGS [options]`. */
  readonly synopsis: string;
  /** In the order `sharder NAME --help` lists them. */
  readonly options: readonly CliOption[];
  /** Lines after the options. */
  readonly notes?: readonly string[] | undefined;
  /** When the command exits 1, if it says more than "the operation failed" (for the reference). */
  readonly exitFailure?: string | undefined;
  /** Whether positional arguments are taken (their check is the command's). */
  readonly positionals?: boolean;
  run(args: ParsedArgs, io: Io): Promise<number>;
}

export interface ParsedArgs {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export const CONFIG_OPTION: CliOption = {
  flag: 'config',
  short: 'c',
  arg: 'FILE',
  type: 'path',
  doc: 'configuration file (default: $SHARDER_CONFIG, else ./sharder.yml)',
};
export const JSON_OPTION: CliOption = { flag: 'json', type: 'boolean', default: false, doc: 'print JSON for scripts' };
export const HELP_OPTION: CliOption = { flag: 'help', short: 'h', type: 'boolean', doc: 'show this help' };

/** The doc column of a usage line unless the option says otherwise. */
const USAGE_COLUMN = 22;

/** `  -k, --kind KIND     kind of object ...`: the option's lines in `--help`. */
export function optionLines(o: CliOption): string[] {
  const column = o.column ?? USAGE_COLUMN;
  const head = `  ${o.short ? `-${o.short}, ` : '    '}--${o.flag}${o.arg ? ` ${o.arg}` : ''}`;
  const [first, ...more] = typeof o.doc === 'string' ? [o.doc] : o.doc;
  return [
    `${head.padEnd(Math.max(column, head.length + 1))}${first}`,
    ...more.map((l) => `${' '.repeat(USAGE_COLUMN)}${l}`),
  ];
}

/** The text `sharder NAME --help` prints after "Usage: " (the help option last, after the notes). */
export function usage(cmd: Command): string {
  return [cmd.synopsis, ...cmd.options.flatMap(optionLines), ...(cmd.notes ?? []), ...optionLines(HELP_OPTION)].join(
    '\n',
  );
}

function parseConfig(options: readonly CliOption[]): Options {
  return Object.fromEntries(
    options.map((o) => [
      o.flag,
      {
        type: o.arg ? 'string' : 'boolean',
        ...(o.short ? { short: o.short } : {}),
        ...(o.multiple ? { multiple: true } : {}),
      },
    ]),
  );
}

export function parse(cmd: Command, argv: string[]): ParsedArgs {
  try {
    const r = parseArgs({
      args: argv,
      options: parseConfig([...cmd.options, HELP_OPTION]),
      allowPositionals: true,
      strict: true,
    });
    if (!cmd.positionals && r.positionals.length > 0) throw new UsageError(`unexpected argument "${r.positionals[0]}"`);
    return r as ParsedArgs;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError((err as Error).message);
  }
}

export function configFrom(args: ParsedArgs, io: Io): Config {
  return loadConfig({ file: args.values.config as string | undefined, env: io.env });
}

/** Prints an error the way a shell user can act on, and returns the exit status. */
export function report(io: Io, err: unknown): number {
  if (err instanceof ConfigError) {
    const n = err.problems.length;
    const problems = err.message
      .split('\n')
      .map((l) => `  ${l}`)
      .join('\n');
    io.err(`sharder: invalid configuration (${n} problem${n === 1 ? '' : 's'}):\n${problems}\n`);
    return EXIT_USAGE;
  }
  if (err instanceof UsageError) {
    io.err(`sharder: ${err.message}\nRun "sharder --help" for usage.\n`);
    return EXIT_USAGE;
  }
  if (err instanceof ShardError) {
    io.err(`sharder: ${err.message} [${err.code}]\n`);
    // 400: the request itself was wrong and nothing was done; 404, 409, 5xx: it could not be done.
    return err.status === 400 ? EXIT_USAGE : EXIT_FAILURE;
  }
  io.err(`sharder: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
  return EXIT_FAILURE;
}
