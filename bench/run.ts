/**
 * `npm run bench [-- SUITE ...]`: runs every benchmark suite (each a separate process, one at
 * a time so they do not compete for the two cores), then prints one table of all rows, each a
 * ratio against a baseline measured in the same run, and writes bench/results/all.json.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { BENCH_DIR, printRows, type BenchRow } from './lib.js';

/** Suites in the order they run: the sharder alone first, then the setups around it. */
const SUITES = ['auth', 'metrics', 'memory', 'assign', 'nginx', 'proxy'];

const chosen = process.argv.slice(2);
const unknown = chosen.filter((s) => !SUITES.includes(s));
if (unknown.length > 0) {
  console.error(`unknown suite(s): ${unknown.join(', ')}; known: ${SUITES.join(', ')}`);
  process.exit(2);
}
const suites = chosen.length > 0 ? chosen : SUITES.filter((s) => existsSync(join(BENCH_DIR, `${s}.ts`)));
const all: Array<BenchRow & { suite: string }> = [];
const failed: string[] = [];
for (const suite of suites) {
  console.log(`\n== ${suite}`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(BENCH_DIR, `${suite}.ts`)], { stdio: 'inherit' });
  const file = join(BENCH_DIR, 'results', `${suite}.json`);
  if (r.status !== 0 || !existsSync(file)) {
    failed.push(suite);
    continue;
  }
  const { rows } = JSON.parse(readFileSync(file, 'utf8')) as { rows: BenchRow[] };
  all.push(...rows.map((row) => ({ ...row, suite })));
}
const machine = `${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), node ${process.version}`;
printRows(
  `All benchmarks (${machine})`,
  all.map((r) => ({ ...r, row: `${r.suite}: ${r.row}` })),
);
writeFileSync(
  join(BENCH_DIR, 'results', 'all.json'),
  `${JSON.stringify({ at: new Date().toISOString(), machine, rows: all, failed }, null, 2)}\n`,
);
const missed = all.filter((r) => !r.met);
console.log(
  `\n${all.length} rows, ${all.length - missed.length} targets ` +
    `met${missed.length ? `, missed: ${missed.map((r) => `${r.suite}: ${r.row}`).join('; ')}` : ''}`,
);
if (failed.length > 0) {
  console.error(`suites that failed to run: ${failed.join(', ')}`);
  process.exit(1);
}
