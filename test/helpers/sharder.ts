/** Starting real sharders for tests: in-process on port 0, or as a child process. */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { stringify } from 'yaml';
import type { Io } from '../../src/cli/command.js';
import { main } from '../../src/cli/main.js';
import { validateConfig } from '../../src/config/validate.js';
import type { Config, RawConfig } from '../../src/config/types.js';
import { silentLogger } from '../../src/log.js';
import { Sharder } from '../../src/process/sharder.js';
import type { Store } from '../../src/store/types.js';
import { tempDir } from './tmp.js';
import type { HasAfter } from './context.js';

export const ROOT = resolve(import.meta.dirname, '../..');

/** Three equal buckets, like the shipped example. */
export function bucketsRaw(n = 3, upstreamBase = 9000): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => ({ name: `hub-${i}`, upstream: `http://127.0.0.1:${upstreamBase + i}` }));
}

/** A raw test configuration: port 0, SQLite in `dir`, three buckets; `over` replaces keys. */
export function rawConfig(dir: string, over: RawConfig = {}): RawConfig {
  return {
    listen: '127.0.0.1:0',
    control_listen: '127.0.0.1:0',
    database: `sqlite:${join(dir, 'sharder.db')}`,
    store: { poll_ms: 50 },
    log: { level: 'silent' },
    kinds: { hub: { buckets: bucketsRaw() } },
    ...over,
  };
}

export function writeConfig(dir: string, raw: RawConfig, name = 'sharder.yml'): string {
  const file = join(dir, name);
  writeFileSync(file, stringify(raw));
  return file;
}

export function testConfig(dir: string, over: RawConfig = {}): Config {
  return validateConfig(rawConfig(dir, over), join(dir, 'sharder.yml'));
}

export interface Running {
  sharder: Sharder;
  url: string;
  dir: string;
  config: Config;
}

/** Starts an in-process sharder on a free port; stopped when `t` ends. */
export async function startSharder(t: HasAfter, over: RawConfig = {}, dir = tempDir(t)): Promise<Running> {
  const config = testConfig(dir, over);
  const sharder = await Sharder.start(config, { log: silentLogger() });
  t.after(async () => {
    // Every test that runs a sharder ends by checking the counts the policy uses; the server
    // is stopped whatever the check finds, and a check that cannot finish says so.
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        assertCountsExact(sharder.store),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('the count check did not finish within 10 s')), 10_000);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      await sharder.stop(1000);
    }
  });
  return { sharder, url: sharder.url, dir, config };
}

/**
 * The per-bucket counts kept for the policy equal COUNT(*) per bucket, for every kind in the
 * store (skipped when a test made the store unavailable on purpose).
 */
export async function assertCountsExact(store: Store): Promise<void> {
  let kinds: string[];
  try {
    kinds = await store.kinds();
  } catch (err) {
    if ((err as { code?: string }).code === 'SHARD_ERR_STORE_UNAVAILABLE') return;
    throw err;
  }
  for (const kind of kinds) {
    const sorted = (m: Map<string, number>): [string, number][] =>
      [...m].filter(([, n]) => n !== 0).sort(([a], [b]) => (a < b ? -1 : 1));
    assert.deepEqual(
      sorted(await store.counts(kind)),
      sorted(await store.realCounts(kind)),
      `kind ${kind}: kept counts equal COUNT(*) per bucket`,
    );
  }
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** tsx's loader by its URL, so that a command run in any working folder finds it. */
const TSX = import.meta.resolve('tsx');

export interface CliOptions {
  /** Added to this process's environment. */
  env?: NodeJS.ProcessEnv;
  /** Standard input (for FILE "-"); empty when not given. */
  input?: string;
}

/**
 * The CLI in this process: `main()` with standard output, standard error and standard input
 * of its own, so that a test sees the exit status and the bytes a shell user would, without
 * the start of a node process. Paths resolve against this process's working folder (the
 * repository root under `npm test`), as they do for the process runner's default.
 *
 * `serve` is refused here (its logger writes to the process's own stdout, and a server that
 * started could not be stopped): use `runCliProcess` or `spawnServe`. So are PG* variables,
 * which the store reads from the process environment when it connects.
 */
export async function runCli(args: string[], opts: CliOptions = {}): Promise<CliResult> {
  if (args[0] === 'serve')
    throw new Error('runCli runs commands in this process; run serve with runCliProcess or spawnServe');
  const pg = Object.keys(opts.env ?? {}).filter((k) => k.startsWith('PG'));
  if (pg.length > 0)
    throw new Error(
      `runCli cannot pass ${pg.join(', ')}: the store reads PG* from the process environment; use runCliProcess`,
    );
  let stdout = '';
  let stderr = '';
  const io: Io = {
    out: (text) => void (stdout += text),
    err: (text) => void (stderr += text),
    env: { ...process.env, ...opts.env },
    stdout: new Writable({
      decodeStrings: false,
      write(chunk: string | Buffer, _encoding, done) {
        stdout += String(chunk);
        done();
      },
    }),
    stdin: Readable.from(Buffer.from(opts.input ?? ''), { objectMode: false }),
  };
  const code = await main(args, io);
  return { code, stdout, stderr };
}

/** The CLI as a user runs it: a separate node process (TypeScript through tsx). */
export function cliArgs(args: string[]): string[] {
  return ['--import', TSX, join(ROOT, 'src/cli/run.ts'), ...args];
}

/**
 * The command line that runs the CLI: node itself, or, with `umask` (e.g. 0o000), node started
 * by a shell that set that umask first (node cannot be given one at spawn).
 */
function cliCommand(args: string[], umask?: number): [string, string[]] {
  if (umask === undefined) return [process.execPath, cliArgs(args)];
  return [
    '/bin/sh',
    ['-c', `umask ${umask.toString(8).padStart(3, '0')} && exec "$0" "$@"`, process.execPath, ...cliArgs(args)],
  ];
}

/**
 * The CLI as a separate process, for what only a process shows: the process entry's exit
 * status, serve, a umask, and PG* variables. Everything else runs faster through `runCli`.
 */
export async function runCliProcess(
  args: string[],
  opts: CliOptions & { cwd?: string; umask?: number } = {},
): Promise<CliResult> {
  const [command, argv] = cliCommand(args, opts.umask);
  const child = spawn(command, argv, {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin.end(opts.input ?? '');
  const [code] = (await once(child, 'close')) as [number | null];
  return { code, stdout, stderr };
}

/** A `sharder serve` child: its address, and its output (stdout and stderr) so far. */
export interface SpawnedServe {
  child: ChildProcess;
  url: string;
  control: string | null;
  output: () => string;
  /**
   * Resolves once the output holds `count` matches of `re`; fails naming the output if the child
   * exits first or `ms` pass.
   */
  logged: (re: RegExp, count?: number, ms?: number) => Promise<void>;
}

/**
 * Starts `sharder serve` as a child process and waits until it listens; killed when `t` ends.
 * It logs at info level (its start-up line carries the addresses) unless `env` says otherwise.
 */
export async function spawnServe(
  t: HasAfter,
  configFile: string | null,
  env: NodeJS.ProcessEnv = {},
  args: string[] = [],
  opts: { umask?: number; cwd?: string } = {},
): Promise<SpawnedServe> {
  // configFile null: no --config (the default ./sharder.yml of the working folder, or none at all).
  const config = configFile === null ? [] : ['--config', configFile];
  const [command, argv] = cliCommand(['serve', ...config, ...args], opts.umask);
  const child = spawn(command, argv, {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, SHARDER_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  const readers = new Set<() => void>();
  const append = (d: string): void => {
    out += d;
    for (const r of readers) r();
  };
  child.stderr.setEncoding('utf8').on('data', append);
  child.stdout.setEncoding('utf8').on('data', append);
  const logged = (re: RegExp, count = 1, ms = 15_000): Promise<void> =>
    new Promise((resolvePromise, reject) => {
      const all = new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`);
      const finish = (err?: Error): void => {
        readers.delete(check);
        child.off('exit', exited);
        clearTimeout(timer);
        if (err) reject(err);
        else resolvePromise();
      };
      const check = (): void => {
        if ((out.match(all) ?? []).length >= count) finish();
      };
      const exited = (): void => finish(new Error(`sharder serve exited before logging ${re} (${count}×):\n${out}`));
      const timer = setTimeout(
        () => finish(new Error(`sharder serve did not log ${re} (${count}×) within ${ms} ms:\n${out}`)),
        ms,
      );
      readers.add(check);
      child.once('exit', exited);
      check();
      if (readers.has(check) && (child.exitCode !== null || child.signalCode !== null)) exited();
    });
  await logged(/"listen":"http:\/\/[^"]+"/);
  const url = /"listen":"(http:\/\/[^"]+)"/.exec(out)![1]!;
  const control = /"control":"(http:\/\/[^"]+)"/.exec(out)?.[1] ?? null;
  return { child, url, control, output: () => out, logged };
}
