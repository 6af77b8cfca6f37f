/**
 * What the admin commands share: the operations module on the configured store, the acting
 * user for the audit log, common options, and output helpers.
 */
import { userInfo } from 'node:os';
import type { Config } from '../config/types.js';
import { Operations } from '../ops/index.js';
import type { Io, Options, ParsedArgs } from './command.js';
import { UsageError } from './command.js';
import { withStore } from './store.js';

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

/** Runs `fn` with the operations on the configured store, closed afterwards. */
export function withOps<T>(config: Config, fn: (ops: Operations) => Promise<T>): Promise<T> {
  return withStore(config, (store) => fn(new Operations({ store, config: () => config })));
}

export const KIND_OPTION: Options = { kind: { type: 'string', short: 'k' } };
export const JSON_OPTION: Options = { json: { type: 'boolean' } };
export const REASON_OPTION: Options = { reason: { type: 'string', short: 'r' } };
export const REASON_USAGE = '  -r, --reason TEXT   why, for the audit log';
export const SAFETY_OPTIONS: Options = {
  'stop-servers': { type: 'boolean' },
  'skip-hub-check': { type: 'boolean' },
  'stop-timeout': { type: 'string' },
};
export const SAFETY_USAGE = [
  '      --stop-servers        stop the user\'s servers on the old hub (and wait) instead of refusing',
  '      --stop-timeout SECS   how long to wait for a server to stop (default 120)',
  '      --skip-hub-check      do not ask the old hub (its hub_api) about running servers at all',
].join('\n');

export function str(args: ParsedArgs, key: string): string | undefined {
  return args.values[key] as string | undefined;
}

export function flag(args: ParsedArgs, key: string): boolean {
  return args.values[key] === true;
}

/** A positive whole number option. */
export function intOption(args: ParsedArgs, key: string): number | undefined {
  const v = str(args, key);
  if (v === undefined) return undefined;
  if (!/^\d{1,9}$/.test(v) || Number(v) === 0) throw new UsageError(`--${key} must be a positive whole number, got "${v}"`);
  return Number(v);
}

export function safety(args: ParsedArgs): { stopServers: boolean; skipHubCheck: boolean; stopTimeoutMs: number | undefined } {
  const t = intOption(args, 'stop-timeout');
  if (flag(args, 'stop-servers') && flag(args, 'skip-hub-check')) throw new UsageError('--stop-servers and --skip-hub-check exclude each other');
  return { stopServers: flag(args, 'stop-servers'), skipHubCheck: flag(args, 'skip-hub-check'), stopTimeoutMs: t === undefined ? undefined : t * 1000 };
}

/** Exactly one positional argument. */
export function onePositional(args: ParsedArgs, what: string, command: string): string {
  if (args.positionals.length !== 1) throw new UsageError(`${command} takes exactly one ${what}`);
  return args.positionals[0]!;
}

export function json(io: Io, value: unknown): void {
  io.out(`${JSON.stringify(value)}\n`);
}

/** Aligned columns; columns listed in `right` are right-aligned. The last column is not padded. */
export function table(rows: string[][], right: readonly number[] = []): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return `${rows.map((r) => r.map((c, i) => (i === r.length - 1 && !right.includes(i) ? c : right.includes(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n')}\n`;
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

export const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : /(s|sh|ch|x)$/.test(word) ? 'es' : 's'}`;
