/**
 * What metrics cost /auth: the compiled sharder with `metrics.enabled: true` (the default:
 * requests counted and timed, process metrics collected) against the same with `false`, in
 * the same run, measured with wrk from a separate process over 10,000 known names. Runs
 * alternate between the two so that drift on a shared machine hits both alike.
 * Target: on/off >= 0.95 (metrics cost less than 5% of /auth throughput).
 *
 * Throughput on a shared two-core machine swings by more than the 5% measured here, so a
 * second row measures the server's own CPU time per request (utime + stime from /proc),
 * which other processes' load disturbs far less: a CPU-bound server's throughput is the
 * inverse of it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, ensureBuilt, seed, sharderDir, startSharder, type Proc } from './procs.js';
import { median, report, wrk, type BenchRow, type WrkResult } from './lib.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
// Five runs each, not three: the difference measured is smaller than the machine's noise.
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const NAMES = 10_000;
const script = join(ROOT, 'bench/names.lua');
const env = { BENCH_NAMES: String(NAMES) };

/** CPU time (user + system) a process has used, in clock ticks (/proc/PID/stat fields 14, 15). */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

interface Run extends WrkResult {
  /** Server CPU ticks per 1,000 requests. */
  cpuPerK: number;
}

async function once(config: string): Promise<Run> {
  const p: Proc = await startSharder(config, 1);
  try {
    const url = `http://127.0.0.1:${p.port}/auth`;
    await wrk(url, { connections: 32, seconds: 2, script, env }); // warm: JIT, and every name cached
    const before = cpuTicks(p.child.pid!);
    const r = await wrk(url, { connections: 32, seconds: SECONDS, script, env });
    const ticks = cpuTicks(p.child.pid!) - before;
    if (r.errors > 0) throw new Error(`${r.errors} errors from port ${p.port}`);
    return { ...r, cpuPerK: (ticks / r.requests) * 1000 };
  } finally {
    await p.stop();
  }
}

ensureBuilt();
const on = sharderDir({ metrics: { enabled: true } });
const off = sharderDir({ metrics: { enabled: false } });
try {
  seed(on.db, NAMES);
  seed(off.db, NAMES);
  const withMetrics: Run[] = [];
  const without: Run[] = [];
  for (let i = 0; i < RUNS; i++) {
    // Alternate which goes first, so neither always runs on a warmer (or busier) machine.
    if (i % 2 === 0) {
      withMetrics.push(await once(on.config));
      without.push(await once(off.config));
    } else {
      without.push(await once(off.config));
      withMetrics.push(await once(on.config));
    }
  }
  const rps = (rs: WrkResult[]): number => median(rs.map((r) => r.rps));
  const cpu = (rs: Run[]): number => median(rs.map((r) => r.cpuPerK));
  const cpuRatio = cpu(without) / cpu(withMetrics);
  const p99 = (rs: WrkResult[]): number => median(rs.map((r) => r.p99));
  const ratio = rps(withMetrics) / rps(without);
  const rows: BenchRow[] = [
    {
      row: '1. /auth known objects, metrics on vs off',
      value: rps(withMetrics),
      baseline: rps(without),
      unit: 'req/s',
      ratio,
      target: '>= 0.95',
      met: ratio >= 0.95,
      note:
        `median of ${RUNS} alternating runs of ${SECONDS} s; on: ` +
        `${withMetrics.map((r) => r.rps.toFixed(0)).join(', ')}; off: ` +
        `${without.map((r) => r.rps.toFixed(0)).join(', ')}`,
    },
    {
      row: '2. server CPU per /auth request, off / on',
      value: cpu(withMetrics),
      baseline: cpu(without),
      unit: 'ticks/1k req',
      ratio: cpuRatio,
      target: '>= 0.95',
      met: cpuRatio >= 0.95,
      note:
        'the throughput ratio implied by CPU cost (1 tick = 10 ms); on: ' +
        `${withMetrics.map((r) => r.cpuPerK.toFixed(3)).join(', ')}; off: ` +
        `${without.map((r) => r.cpuPerK.toFixed(3)).join(', ')}`,
    },
    {
      row: '3. /auth p99 latency, metrics on vs off',
      value: p99(withMetrics),
      baseline: p99(without),
      unit: 'ms',
      ratio: p99(withMetrics) / p99(without),
      target: '<= 1.10',
      met: p99(withMetrics) / p99(without) <= 1.1,
    },
  ];
  report('metrics', rows);
} finally {
  on.cleanup();
  off.cleanup();
}
