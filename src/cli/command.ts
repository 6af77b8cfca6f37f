import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, ShardError } from '../errors.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/types.js';

/** Exit statuses a shell user can branch on. */
export const EXIT_OK = 0;
/** The operation failed (store unavailable, not found, …). */
export const EXIT_FAILURE = 1;
/** Bad usage or bad configuration: nothing was done. */
export const EXIT_USAGE = 2;

export type Options = NonNullable<ParseArgsConfig['options']>;

export interface Io {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
  /** Standard output as a stream, for long outputs written with backpressure (export). */
  stdout?: NodeJS.WritableStream;
  /** Standard input, for commands that read FILE "-". */
  stdin?: NodeJS.ReadableStream;
}

export interface Command {
  readonly name: string;
  /** One line for `sharder --help`. */
  readonly summary: string;
  /** Usage and option lines for `sharder NAME --help`. */
  readonly usage: string;
  readonly options: Options;
  /** Whether positional arguments are taken (their check is the command's). */
  readonly positionals?: boolean;
  run(args: ParsedArgs, io: Io): Promise<number>;
}

export interface ParsedArgs {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export class UsageError extends ShardError {
  override readonly code = 'SHARD_ERR_USAGE';
  override readonly status = 400;
}

export const CONFIG_OPTION: Options = {
  config: { type: 'string', short: 'c' },
};
export const CONFIG_USAGE = '  -c, --config FILE   configuration file (default: $SHARDER_CONFIG, else ./sharder.yml)';

export function parse(cmd: Command, argv: string[]): ParsedArgs {
  try {
    const r = parseArgs({ args: argv, options: { ...cmd.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    if (!cmd.positionals && r.positionals.length > 0) throw new UsageError(`unexpected argument "${r.positionals[0]}"`);
    return r;
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
    const problems = err.message.split('\n').map((l) => `  ${l}`).join('\n');
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
