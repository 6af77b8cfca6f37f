/**
 * /auth throughput and latency against the floor (a bare node:http server), measured in the
 * same run with wrk from a separate process. Rows: /auth vs floor, workers: 2 scaling vs the
 * floor's scaling, p99 under 64 connections.
 */
import { join } from 'node:path';
import { ROOT, ensureBuilt, seed, sharderDir, startFloor, startSharder, type Proc } from './procs.js';
import { median, report, wrk, type BenchRow, type WrkResult } from './lib.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const NAMES = 10_000;
const script = join(ROOT, 'bench/names.lua');
const env = { BENCH_NAMES: String(NAMES) };

async function series(p: Proc, connections: number): Promise<WrkResult[]> {
  const url = `http://127.0.0.1:${p.port}/auth`;
  await wrk(url, { connections, seconds: 2, script, env }); // warm: JIT, and every name cached
  const out: WrkResult[] = [];
  for (let i = 0; i < RUNS; i++) out.push(await wrk(url, { connections, seconds: SECONDS, script, env }));
  const errors = out.reduce((a, r) => a + r.errors, 0);
  if (errors > 0) throw new Error(`${errors} errors from port ${p.port}`);
  return out;
}

async function measure(start: () => Promise<Proc>, connections: number): Promise<WrkResult[]> {
  const p = await start();
  try {
    return await series(p, connections);
  } finally {
    await p.stop();
  }
}

ensureBuilt();
const d = sharderDir();
try {
  seed(d.db, NAMES);
  const floor1 = await measure(() => startFloor(1), 32);
  const sharder1 = await measure(() => startSharder(d.config, 1), 32);
  const floor2 = await measure(() => startFloor(2), 32);
  const sharder2 = await measure(() => startSharder(d.config, 2), 32);
  const floorP = await measure(() => startFloor(1), 64);
  const sharderP = await measure(() => startSharder(d.config, 1), 64);

  const rps = (rs: WrkResult[]): number => median(rs.map((r) => r.rps));
  const p99 = (rs: WrkResult[]): number => median(rs.map((r) => r.p99));
  const ratio1 = rps(sharder1) / rps(floor1);
  const floorScale = rps(floor2) / rps(floor1);
  const sharderScale = rps(sharder2) / rps(sharder1);
  const rows: BenchRow[] = [
    {
      row: '1. /auth known objects vs bare node:http (1 process)',
      value: rps(sharder1),
      baseline: rps(floor1),
      unit: 'req/s',
      ratio: ratio1,
      target: '>= 0.80',
      met: ratio1 >= 0.8,
    },
    {
      row: "2. workers: 2 scaling vs the floor's 2-worker scaling",
      value: sharderScale,
      baseline: floorScale,
      unit: 'x',
      ratio: sharderScale / floorScale,
      target: '>= 0.90',
      met: sharderScale / floorScale >= 0.9,
      note:
        `sharder ${rps(sharder1).toFixed(0)} -> ${rps(sharder2).toFixed(0)} req/s, floor ` +
        `${rps(floor1).toFixed(0)} -> ${rps(floor2).toFixed(0)} req/s; wrk shares the 2 cores`,
    },
    {
      row: '6. /auth p99 latency, 64 connections',
      value: p99(sharderP),
      baseline: p99(floorP),
      unit: 'ms',
      ratio: p99(sharderP) / p99(floorP),
      target: '< 2 ms',
      met: p99(sharderP) < 2,
      note: `median of ${RUNS} runs; baseline is the floor's p99`,
    },
  ];
  report('auth', rows);
} finally {
  d.cleanup();
}
