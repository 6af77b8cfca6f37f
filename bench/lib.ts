/**
 * Shared benchmark plumbing. Each bench/<name>.ts runs standalone
 * (`node --import tsx bench/<name>.ts`), measures rows as ratios against a baseline measured in
 * the same run (these machines are noisy), prints them and writes bench/results/<name>.json.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { BucketPolicyInput } from '../src/core/policy.js';
import type { Store } from '../src/store/types.js';

export const BENCH_DIR = resolve(import.meta.dirname);

export interface BenchRow {
  /** What is measured, e.g. "/auth known objects vs bare node:http". */
  row: string;
  value: number;
  baseline: number;
  unit: string;
  /** value / baseline (or as the row defines it). */
  ratio: number;
  /** Human-readable target, e.g. ">= 0.80". */
  target: string;
  met: boolean;
  note?: string;
}

const fmt = (n: number): string =>
  Math.abs(n) >= 100 ? n.toFixed(0) : Math.abs(n) >= 1 ? n.toFixed(2) : n.toPrecision(3);

export function printRows(title: string, rows: readonly BenchRow[]): void {
  const table = [
    ['row', 'value', 'baseline', 'unit', 'ratio', 'target', 'met'],
    ...rows.map((r) => [
      r.row,
      fmt(r.value),
      fmt(r.baseline),
      r.unit,
      r.ratio.toFixed(3),
      r.target,
      r.met ? 'yes' : 'NO',
    ]),
  ];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((t) => t[i]!.length)));
  console.log(`\n${title}`);
  for (const t of table) console.log(t.map((c, i) => c.padEnd(widths[i]!)).join('  '));
  for (const r of rows) if (r.note) console.log(`  note (${r.row}): ${r.note}`);
}

/** Prints the rows and writes them to bench/results/<name>.json. */
export function report(name: string, rows: readonly BenchRow[]): void {
  printRows(name, rows);
  const dir = join(BENCH_DIR, 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, `${name}.json`),
    `${JSON.stringify({ name, at: new Date().toISOString(), rows }, null, 2)}\n`,
  );
}

export interface WrkResult {
  rps: number;
  /** Latency percentiles in milliseconds. */
  p50: number;
  p99: number;
  requests: number;
  /** Socket errors plus non-2xx/3xx responses. */
  errors: number;
}

function ms(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text.trim());
  if (!m) return Number.NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 'ms' ? v : m[2] === 's' ? v * 1000 : v * 60_000;
}

/** Runs wrk (a separate process) against a URL and parses its report. */
export async function wrk(
  url: string,
  opts: {
    connections?: number;
    threads?: number;
    seconds?: number;
    headers?: Record<string, string>;
    script?: string;
    env?: NodeJS.ProcessEnv;
  } = {},
): Promise<WrkResult> {
  const args = [
    '--latency',
    '-t',
    String(opts.threads ?? 1),
    '-c',
    String(opts.connections ?? 32),
    '-d',
    `${opts.seconds ?? 5}s`,
  ];
  for (const [k, v] of Object.entries(opts.headers ?? {})) args.push('-H', `${k}: ${v}`);
  if (opts.script) args.push('-s', opts.script);
  args.push(url);
  const { stdout } = await promisify(execFile)('wrk', args, {
    maxBuffer: 1 << 20,
    env: { ...process.env, ...opts.env },
  });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  const requests = Number(/(\d+) requests in/.exec(stdout)?.[1]);
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const sockErr = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  const p50 = ms(/^\s+50%\s+(\S+)/m.exec(stdout)?.[1] ?? '');
  const p99 = ms(/^\s+99%\s+(\S+)/m.exec(stdout)?.[1] ?? '');
  if (!Number.isFinite(rps)) throw new Error(`cannot parse wrk output:\n${stdout}`);
  return { rps, p50, p99, requests, errors: non2xx + sockErr };
}

/** Median of a list of numbers. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Mean milliseconds of a new (first-time) assignment on each store, alternating rounds
 * between them (and their order) so that machine noise hits all alike; round -1 warms up.
 */
export async function meanNewAssignment(
  stores: readonly Store[],
  tag: string,
  buckets: readonly BucketPolicyInput[],
  rounds: number,
  perRound: number,
): Promise<number[]> {
  const total = stores.map(() => 0);
  for (let round = -1; round < rounds; round++) {
    // Alternate the order too, so that neither store always runs right after the other.
    const order = round % 2 === 0 ? [...stores.keys()] : [...stores.keys()].reverse();
    for (const s of order) {
      const store = stores[s]!;
      for (let i = 0; i < perRound; i++) {
        const name = `${tag}-r${round}-${i}`;
        const t0 = performance.now();
        const r = await store.assign('hub', name, buckets);
        const dt = performance.now() - t0;
        if (!r.created) throw new Error(`${name} was not new`);
        if (round >= 0) total[s]! += dt; // round -1 warms caches and connections
      }
    }
  }
  return total.map((t) => t / (rounds * perRound));
}

/** Resident memory after two forced collections (the process must run with --expose-gc). */
export function rssAfterGc(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with node --expose-gc');
  gc();
  gc();
  return process.memoryUsage().rss;
}
