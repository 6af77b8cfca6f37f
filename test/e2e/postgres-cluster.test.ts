/**
 * Several `sharder serve` processes against one real PostgreSQL: racing first requests, an
 * outage in the middle of a load, and changes made outside an instance reaching all of them.
 * The instances read their connection settings three ways: a URL with the password, a URL
 * with postgres.password_file, and `postgres:` with every part from PG* variables.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import type { RawConfig } from '../../src/config/types.js';
import {
  PG_LOCAL_SKIP,
  PG_SKIP,
  freshDatabase,
  ownPostgres,
  sqlClient,
  stopSharedPostgres,
  type PgServer,
} from '../helpers/postgres.js';
import { rawConfig, runCli, spawnServe, writeConfig } from '../helpers/sharder.js';
import { scrape, sum } from '../helpers/prom.js';
import { tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/wait.js';
import type { HasAfter } from '../helpers/context.js';

after(stopSharedPostgres);

interface Instance {
  url: string;
  control: string | null;
  output: () => string;
  configFile: string;
  env: NodeJS.ProcessEnv;
}

/** Config and environment for instance i, each reading its connection settings differently. */
function instanceSetup(
  dir: string,
  i: number,
  db: { url: string; name: string; server: PgServer },
  over: RawConfig,
): { file: string; env: NodeJS.ProcessEnv } {
  const pgSection = (over.postgres ?? {}) as Record<string, unknown>;
  const base = rawConfig(dir, { log: { level: 'info' }, store: { poll_ms: 500 }, ...over });
  const noPassword = new URL(db.url);
  noPassword.password = '';
  let env: NodeJS.ProcessEnv = {};
  switch (i % 3) {
    case 0:
      base.database = db.url;
      break;
    case 1: {
      const pwFile = join(dir, `pg-password-${i}`);
      writeFileSync(pwFile, `${db.server.password}\n`, { mode: 0o600 });
      base.database = noPassword.href;
      base.postgres = { ...pgSection, password_file: pwFile };
      break;
    }
    case 2:
      base.database = 'postgres:';
      env = {
        PGHOST: db.server.host,
        PGPORT: String(db.server.port),
        PGUSER: db.server.user,
        PGPASSWORD: db.server.password,
        PGDATABASE: db.name,
      };
      break;
  }
  return { file: writeConfig(dir, base, `sharder-${i}.yml`), env };
}

async function startInstances(
  t: HasAfter,
  n: number,
  db: { url: string; name: string; server: PgServer },
  over: RawConfig = {},
): Promise<Instance[]> {
  const dir = tempDir(t);
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const { file, env } = instanceSetup(dir, i, db, over);
      const s = await spawnServe(t, file, env);
      return { url: s.url, control: s.control, output: s.output, configFile: file, env };
    }),
  );
}

interface Answer {
  status: number;
  bucket: string | undefined;
  code: string | undefined;
  ms: number;
}

async function auth(agent: Agent, base: string, name: string): Promise<Answer> {
  const started = performance.now();
  const r = await request(`${base}/auth`, { dispatcher: agent, headers: { REMOTE_USER: name } });
  const body = await r.body.text();
  const bucket = r.headers['x-shard-bucket'];
  return {
    status: r.statusCode,
    bucket: typeof bucket === 'string' ? bucket : undefined,
    code: r.statusCode === 200 ? undefined : (JSON.parse(body) as { code: string }).code,
    ms: performance.now() - started,
  };
}

function newAgent(t: HasAfter): Agent {
  const agent = new Agent({ keepAliveTimeout: 10_000 });
  t.after(() => agent.close());
  return agent;
}

async function assertCounts(url: string, t: HasAfter): Promise<number[]> {
  const sql = await sqlClient(t, url);
  const kept = (
    await sql.query<{ bucket: string; count: string }>(
      "SELECT bucket, count FROM bucket_counts WHERE kind = 'hub' AND count <> 0 ORDER BY bucket",
    )
  ).rows.map((r) => [r.bucket, Number(r.count)]);
  const real = (
    await sql.query<{ bucket: string; count: string }>(
      "SELECT bucket, count(*) AS count FROM assignments WHERE kind = 'hub' GROUP BY bucket ORDER BY bucket",
    )
  ).rows.map((r) => [r.bucket, Number(r.count)]);
  assert.deepEqual(kept, real, 'bucket_counts equal COUNT(*) per bucket');
  const counts = real.map((r) => r[1] as number);
  assert.ok(
    Math.max(...counts) - Math.min(...counts) <= 1,
    `bucket counts differ by at most 1: ${JSON.stringify(real)}`,
  );
  return counts;
}

function assertNoSecret(instances: Instance[], secret: string): void {
  for (const inst of instances)
    assert.ok(!inst.output().includes(secret), 'the database password never appears in the logs');
}

describe('postgres: several sharder instances on one database', { skip: PG_SKIP }, () => {
  test('5,000 concurrent first requests for 2,500 names, each on two instances at once: one row per name, answers agree, no 5xx, counts even', async (t) => {
    const db = await freshDatabase(t);
    const instances = await startInstances(t, 3, db);
    const agent = newAgent(t);
    const names = Array.from({ length: 2500 }, (_, i) => `student-${i}@example.org`);
    const answers = await Promise.all(
      names.flatMap((name, i) => [
        auth(agent, instances[i % 3]!.url, name),
        auth(agent, instances[(i + 1) % 3]!.url, name),
      ]),
    );
    const statuses = new Map<number, number>();
    for (const a of answers) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
    assert.deepEqual(Object.fromEntries(statuses), { 200: 5000 }, 'every request answered 200');
    const sql = await sqlClient(t, db.url);
    const rows = new Map(
      (
        await sql.query<{ name: string; bucket: string }>("SELECT name, bucket FROM assignments WHERE kind = 'hub'")
      ).rows.map((r) => [r.name, r.bucket]),
    );
    assert.equal(rows.size, 2500, 'one row per name');
    names.forEach((name, i) => {
      const [a, b] = [answers[2 * i]!, answers[2 * i + 1]!];
      assert.equal(a.bucket, b.bucket, `both instances answer the same bucket for ${name}`);
      assert.equal(a.bucket, rows.get(name), `the answer is the stored row for ${name}`);
    });
    assert.deepEqual((await assertCounts(db.url, t)).sort(), [833, 833, 834]);
    assertNoSecret(instances, db.server.password);
  });

  test('a change made outside an instance (SQL, another process) reaches every instance within a second', async (t) => {
    const db = await freshDatabase(t);
    const instances = await startInstances(t, 3, db);
    const agent = newAgent(t);
    const first = await auth(agent, instances[0]!.url, 'mover');
    for (const inst of instances) assert.equal((await auth(agent, inst.url, 'mover')).bucket, first.bucket);
    const target = first.bucket === 'hub-2' ? 'hub-1' : 'hub-2';
    const sql = await sqlClient(t, db.url);
    await sql.query("UPDATE assignments SET bucket = $1 WHERE kind = 'hub' AND name = 'mover'", [target]);
    const moved = performance.now();
    const took = await Promise.all(
      instances.map((inst) =>
        until(
          async () => (await auth(agent, inst.url, 'mover')).bucket === target,
          3000,
          `the move reaching ${inst.url}`,
          20,
        ).then(
          () => performance.now() - moved,
          () => Infinity,
        ),
      ),
    );
    for (const ms of took)
      assert.ok(
        ms < 1000,
        `the move reached every instance within 1 s (took ${took.map((x) => x.toFixed(0)).join(', ')} ms)`,
      );

    // A delete: every instance forgets the name, and the next request assigns it again, once.
    // Every instance drops it from memory when the delete is announced (its cache shrinks).
    const cached = async (inst: Instance): Promise<number> =>
      sum((await scrape(inst.control!)).samples, 'sharder_cache_entries', { kind: 'hub' });
    const cachedBefore = await Promise.all(instances.map(cached));
    await sql.query("DELETE FROM assignments WHERE kind = 'hub' AND name = 'mover'");
    await until(
      async () => (await Promise.all(instances.map(cached))).every((n, i) => n < cachedBefore[i]!),
      3000,
      'every instance forgot mover',
      20,
    );
    const again = await Promise.all(instances.map((inst) => auth(agent, inst.url, 'mover')));
    assert.ok(
      again.every((a) => a.status === 200 && a.bucket === again[0]!.bucket),
      JSON.stringify(again),
    );
    assert.equal((await sql.query("SELECT count(*)::int AS n FROM assignments WHERE name = 'mover'")).rows[0].n, 1);
    await assertCounts(db.url, t);
  });

  test('the CLI works against PostgreSQL, and running instances answer what it assigned', async (t) => {
    const db = await freshDatabase(t);
    const instances = await startInstances(t, 1, db);
    const assigned = await runCli(['assign', 'from-cli', '--json', '--config', instances[0]!.configFile], {
      env: instances[0]!.env,
    });
    assert.equal(assigned.code, 0, assigned.stderr);
    const { bucket, created } = JSON.parse(assigned.stdout) as { bucket: string; created: boolean };
    assert.equal(created, true);
    const agent = newAgent(t);
    assert.equal((await auth(agent, instances[0]!.url, 'from-cli')).bucket, bucket);
    const listed = await runCli(['buckets', '--json', '--config', instances[0]!.configFile], {
      env: instances[0]!.env,
    });
    assert.equal(listed.code, 0, listed.stderr);
    assert.equal((JSON.parse(listed.stdout) as { total: number }).total, 1);
    assert.ok(!assigned.stderr.includes(db.server.password) && !listed.stdout.includes(db.server.password));
  });
});

describe('postgres: outage', { skip: PG_LOCAL_SKIP }, () => {
  test('PostgreSQL stopped mid-load and started again: known names never fail, new names fail fast then succeed, no duplicates, counts correct', async (t) => {
    const server = await ownPostgres(t);
    const db = await freshDatabase(t, server);
    const timeoutMs = 2000;
    const instances = await startInstances(t, 2, db, {
      store: { poll_ms: 500, timeout_ms: timeoutMs },
      postgres: { connection_timeout_ms: 1000 },
    });
    const agent = newAgent(t);

    // 100 known names, answered once by each instance so that both hold them in memory.
    const known = new Map<string, string>();
    for (let i = 0; i < 100; i++) {
      const a = await auth(agent, instances[i % 2]!.url, `known-${i}`);
      assert.equal(a.status, 200);
      known.set(`known-${i}`, a.bucket!);
      assert.equal((await auth(agent, instances[(i + 1) % 2]!.url, `known-${i}`)).bucket, a.bucket);
    }

    type Phase = 'up' | 'down' | 'after';
    let phase: Phase = 'up';
    let running = true;
    let seq = 0;
    const log: Array<Answer & { name: string; known: boolean; phase: Phase }> = [];
    t.after(() => {
      running = false;
    });
    const worker = async (inst: Instance, w: number): Promise<void> => {
      for (let k = 0; running; k++) {
        const isKnown = k % 2 === 0;
        const name = isKnown ? `known-${(w * 7 + k) % 100}` : `new-${seq++}`;
        const p = phase;
        const a = await auth(agent, inst.url, name).catch((err: Error): Answer => ({
          status: 0,
          bucket: undefined,
          code: err.message,
          ms: 0,
        }));
        log.push({ ...a, name, known: isKnown, phase: p });
        await sleep(5);
      }
    };
    const workers = instances.flatMap((inst) => Array.from({ length: 6 }, (_, w) => worker(inst, w)));

    const answered = (p: Phase, which: (a: Answer & { known: boolean }) => boolean): number =>
      log.filter((a) => a.phase === p && which(a)).length;
    await until(() => answered('up', (a) => a.status === 200) >= 100, 10_000, 'load answered before the outage');
    await server.stop();
    phase = 'down';
    const readyz = async (inst: Instance): Promise<number> => {
      const r = await request(`${inst.url}/readyz`, { dispatcher: agent });
      await r.body.text();
      return r.statusCode;
    };
    await until(
      async () => (await Promise.all(instances.map(readyz))).every((code) => code === 503),
      5000,
      '/readyz reporting the outage on every instance',
      50,
    );
    // The load meets the outage: known names answered, new names refused.
    await until(
      () => answered('down', (a) => a.known) >= 50 && answered('down', (a) => !a.known && a.status !== 200) >= 10,
      15_000,
      'load during the outage',
      50,
    );
    await server.start();
    phase = 'after';
    // New names succeed again without a restart of the sharders.
    for (const inst of instances) {
      await until(
        async () => (await auth(agent, inst.url, `probe-${seq++}`)).status === 200,
        15_000,
        'recovery within 15 s of the database coming back',
        100,
      );
    }
    await until(
      () => answered('after', (a) => !a.known && a.status === 200) >= 50,
      10_000,
      'new names answered after the outage',
    );
    running = false;
    await Promise.all(workers);

    for (const inst of instances) {
      const r = await request(`${inst.url}/readyz`, { dispatcher: agent });
      assert.equal(r.statusCode, 200);
      await r.body.text();
    }
    const knownAnswers = log.filter((a) => a.known);
    assert.ok(
      knownAnswers.some((a) => a.phase === 'down'),
      'known names were asked during the outage',
    );
    for (const a of knownAnswers)
      assert.deepEqual([a.name, a.status, a.bucket], [a.name, 200, known.get(a.name)], 'a known name never fails');
    const failed = log.filter((a) => a.status !== 200);
    assert.ok(
      failed.some((a) => a.phase === 'down'),
      'new names failed during the outage',
    );
    for (const a of failed) {
      assert.deepEqual([a.status, a.code], [503, 'SHARD_ERR_STORE_UNAVAILABLE'], 'a failure is a clear 503');
      assert.ok(a.ms < timeoutMs + 1000, `a failure comes within the timeout (took ${a.ms.toFixed(0)} ms)`);
    }
    assert.ok(
      log.some((a) => !a.known && a.phase === 'after' && a.status === 200),
      'new names succeed after the restart',
    );

    // No lost rows: every 200 is stored as answered. Names that failed can be asked again.
    for (const a of failed) {
      const again = await auth(agent, instances[0]!.url, a.name);
      assert.equal(again.status, 200);
      log.push({ ...again, name: a.name, known: false, phase: 'after' });
    }
    const sql = await sqlClient(t, db.url);
    const rows = new Map(
      (
        await sql.query<{ name: string; bucket: string }>("SELECT name, bucket FROM assignments WHERE kind = 'hub'")
      ).rows.map((r) => [r.name, r.bucket]),
    );
    for (const a of log)
      if (a.status === 200) assert.equal(rows.get(a.name), a.bucket, `${a.name} is stored as answered`);
    await assertCounts(db.url, t);
    assertNoSecret(instances, server.password);
  });
});
