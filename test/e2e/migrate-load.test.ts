/**
 * The acceptance run: a bucket holding 100,000 objects is migrated by the CLI (another
 * process, on the same SQLite file) while a running server keeps answering /auth for known and
 * new users with no error; afterwards doctor finds nothing wrong, the audit log has every
 * batch, and the server answers with the new buckets.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { Agent, request } from 'undici';
import { SqliteStore } from '../../src/store/sqlite/index.js';
import { seed } from '../helpers/ops.js';
import { bucketsRaw, rawConfig, runCli, runCliProcess, startSharder, writeConfig } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/wait.js';

const N = 100_000;
const name = (i: number): string => `u${String(i).padStart(6, '0')}`;

test(`migrating a bucket of ${N} objects while /auth keeps answering`, async (t) => {
  const dir = tempDir(t);
  const over = { kinds: { hub: { buckets: bucketsRaw().map((b, i) => (i === 0 ? { ...b, state: 'draining' } : b)) } } };
  const file = writeConfig(dir, rawConfig(dir, over));
  const store = SqliteStore.open({ path: join(dir, 'sharder.db'), busyTimeoutMs: 5000 });
  seed(store, 'hub', 'hub-0', N);
  await store.close();
  const { url } = await startSharder(t, over, dir);

  const agent = new Agent({ connections: 8 });
  t.after(() => agent.close());
  const auth = async (user: string): Promise<{ status: number; bucket: string | undefined }> => {
    const r = await request(`${url}/auth`, { headers: { REMOTE_USER: user }, dispatcher: agent });
    await r.body.dump();
    return { status: r.statusCode, bucket: r.headers['x-shard-bucket'] as string | undefined };
  };
  // Known users are cached by the server before the migration starts.
  for (let i = 0; i < N; i += 997) assert.equal((await auth(name(i))).bucket, 'hub-0');

  let stop = false;
  const statuses = new Map<number, number>();
  let answered = 0;
  const latencies: number[] = [];
  let fresh = 0;
  const worker = async (w: number): Promise<void> => {
    for (let i = 0; !stop; i++) {
      const user = i % 4 === 0 ? `new-${w}-${fresh++}` : name((i * 7919 + w * 104729) % N);
      const t0 = Date.now();
      const r = await auth(user);
      latencies.push(Date.now() - t0);
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      answered++;
      assert.ok(r.bucket === 'hub-0' || r.bucket === 'hub-1' || r.bucket === 'hub-2', `${user}: ${r.bucket}`);
      if (user.startsWith('new-')) assert.notEqual(r.bucket, 'hub-0', 'a draining bucket gets no new users');
    }
  };
  const load = Promise.all(Array.from({ length: 4 }, (_, w) => worker(w)));

  const started = Date.now();
  // A separate process, as an operator runs it: its batches hold SQLite's write lock while the
  // server (here, in the test's process) waits for it to place new users.
  const mig = await runCliProcess(['migrate', 'hub-0', '--json', '--reason', 'acceptance', '--config', file]);
  const seconds = (Date.now() - started) / 1000;
  const during = answered;
  stop = true;
  await load;
  assert.equal(mig.code, 0, mig.stderr);
  const result = JSON.parse(mig.stdout) as {
    id: string;
    moved: number;
    batches: number;
    remaining: number;
    targets: Record<string, number>;
  };
  assert.equal(result.moved, N);
  assert.equal(result.batches, N / 1000);
  assert.equal(result.remaining, 0);
  assert.deepEqual([...statuses.keys()], [200], `every /auth answered 200: ${JSON.stringify([...statuses])}`);
  assert.ok(during > 100, `/auth kept answering during the ${seconds.toFixed(1)} s migration (${during} answers)`);
  latencies.sort((a, b) => a - b);
  t.diagnostic(
    `/auth latency during the migration: p50 ${latencies[Math.floor(latencies.length / 2)]} ms, p99 ` +
      `${latencies[Math.floor(latencies.length * 0.99)]} ms, max ${latencies.at(-1)} ms`,
  );
  t.diagnostic(
    `migrated ${N} objects in ${seconds.toFixed(1)} s by the CLI while /auth answered ${during} requests, none failing`,
  );

  const doctor = await runCli(['doctor', '--json', '--config', file]);
  assert.equal(doctor.code, 0, doctor.stdout);
  assert.equal(JSON.parse(doctor.stdout).ok, true);

  const db = new Database(join(dir, 'sharder.db'), { readonly: true });
  t.after(() => db.close());
  const batches = db
    .prepare("SELECT batch, COUNT(*) AS n FROM audit WHERE action = 'migrate' GROUP BY batch")
    .all() as { batch: string; n: number }[];
  assert.equal(batches.length, N / 1000);
  assert.ok(batches.every((b) => b.batch.startsWith(`${result.id}/`) && b.n === 1000));
  assert.equal(
    (
      db
        .prepare(
          "SELECT COUNT(*) AS n FROM audit WHERE action = 'migrate' AND reason = 'acceptance' AND from_bucket " +
            "= 'hub-0'",
        )
        .get() as { n: number }
    ).n,
    N,
  );

  // The server's cache followed the moves (change feed polled every 50 ms here).
  for (let i = 0; i < N; i += 997) {
    const want = (
      db.prepare("SELECT bucket FROM assignments WHERE kind = 'hub' AND name = ?").get(name(i)) as { bucket: string }
    ).bucket;
    await until(
      async () => (await auth(name(i))).bucket === want,
      2000,
      `the server answers ${name(i)} with ${want}, as the store has it`,
      20,
    );
  }
});
