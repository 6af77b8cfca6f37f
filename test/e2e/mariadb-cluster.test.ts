/**
 * Three `sharder serve` processes against one real MariaDB (helpers/mariadb.ts): racing first
 * requests, and a change made by the CLI reaching every instance within store.poll_ms.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import mysql from 'mysql2/promise';
import { Agent, request } from 'undici';
import { MARIADB_SKIP, freshMariadb, stopSharedMariadb } from '../helpers/mariadb.js';
import { rawConfig, runCli, spawnServe, writeConfig } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/wait.js';
import type { HasAfter } from '../helpers/context.js';

after(stopSharedMariadb);

/** Instance i reads the password from the URL, from mariadb.password_file, or from MYSQL_PWD, in turn. */
async function startInstances(
  t: HasAfter,
  n: number,
  url: string,
  password: string,
  pollMs: number,
): Promise<{ urls: string[]; outputs: (() => string)[]; file: string }> {
  const dir = tempDir(t);
  const noPassword = new URL(url);
  noPassword.password = '';
  const started = await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const base = rawConfig(dir, { log: { level: 'info' }, store: { poll_ms: pollMs } });
      let env: NodeJS.ProcessEnv = {};
      if (i % 3 === 0) base.database = url;
      else if (i % 3 === 1) {
        const pw = join(dir, `mariadb-password-${i}`);
        writeFileSync(pw, `${password}\n`, { mode: 0o600 });
        base.database = noPassword.href;
        base.mariadb = { password_file: pw };
      } else {
        base.database = noPassword.href;
        env = { MYSQL_PWD: password };
      }
      return spawnServe(t, writeConfig(dir, base, `sharder-${i}.yml`), env);
    }),
  );
  return {
    urls: started.map((s) => s.url),
    outputs: started.map((s) => s.output),
    file: writeConfig(dir, rawConfig(dir, { database: url }), 'cli.yml'),
  };
}

async function auth(
  agent: Agent,
  base: string,
  name: string,
): Promise<{ status: number; bucket: string | undefined; body: string }> {
  const r = await request(`${base}/auth`, { dispatcher: agent, headers: { REMOTE_USER: name } });
  const body = await r.body.text();
  const bucket = r.headers['x-shard-bucket'];
  return { status: r.statusCode, bucket: typeof bucket === 'string' ? bucket : undefined, body };
}

describe('mariadb: several sharder instances on one database', { skip: MARIADB_SKIP }, () => {
  test('5,000 concurrent first requests for 2,500 names, each on two of three instances at once: one row per name, answers agree, no 5xx, counts equal COUNT(*), spread ≤ 1; a CLI move reaches all within poll_ms', async (t) => {
    const db = await freshMariadb(t);
    const pollMs = 200;
    const { urls, outputs, file } = await startInstances(t, 3, db.url, db.server.password, pollMs);
    const agent = new Agent({ keepAliveTimeout: 10_000 });
    t.after(() => agent.close());
    const names = Array.from({ length: 2500 }, (_, i) => `student-${i}@example.org`);
    const answers = await Promise.all(
      names.flatMap((name, i) => [auth(agent, urls[i % 3]!, name), auth(agent, urls[(i + 1) % 3]!, name)]),
    );
    const statuses = new Map<number, number>();
    for (const a of answers) statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
    assert.deepEqual(
      Object.fromEntries(statuses),
      { 200: 5000 },
      `every request answered 200; the first other: ${answers.find((a) => a.status !== 200)?.body}`,
    );

    const sql = await mysql.createConnection(db.url);
    t.after(() => sql.end());
    const [rows] = await sql.query<mysql.RowDataPacket[]>("SELECT name, bucket FROM assignments WHERE kind = 'hub'");
    const stored = new Map(rows.map((r) => [r.name as string, r.bucket as string]));
    assert.equal(stored.size, 2500, 'one row per name');
    names.forEach((name, i) => {
      assert.equal(
        answers[2 * i]!.bucket,
        answers[2 * i + 1]!.bucket,
        `both instances answer the same bucket for ${name}`,
      );
      assert.equal(answers[2 * i]!.bucket, stored.get(name), `the answer is the stored row for ${name}`);
    });
    const [kept] = await sql.query<mysql.RowDataPacket[]>(
      "SELECT bucket, count FROM bucket_counts WHERE kind = 'hub' AND count <> 0 ORDER BY bucket",
    );
    const [real] = await sql.query<mysql.RowDataPacket[]>(
      "SELECT bucket, COUNT(*) AS count FROM assignments WHERE kind = 'hub' GROUP BY bucket ORDER BY bucket",
    );
    assert.deepEqual(
      kept.map((r) => [r.bucket, Number(r.count)]),
      real.map((r) => [r.bucket, Number(r.count)]),
      'bucket_counts equal COUNT(*) per bucket',
    );
    assert.deepEqual(real.map((r) => Number(r.count)).sort(), [833, 833, 834], 'spread at most 1');

    // A move by the CLI reaches every instance through the change feed.
    const user = names[7]!;
    const target = stored.get(user) === 'hub-0' ? 'hub-1' : 'hub-0';
    const moved = await runCli(['move', user, '--to', target, '--config', file]);
    assert.equal(moved.code, 0, moved.stderr);
    const t0 = performance.now();
    await until(
      async () => (await Promise.all(urls.map((u) => auth(agent, u, user)))).every((a) => a.bucket === target),
      5000,
      'every instance answers the new bucket',
      10,
    );
    const lag = performance.now() - t0;
    t.diagnostic(
      `the CLI's move reached all three instances ${lag.toFixed(0)} ms after the CLI exited (poll_ms ${pollMs})`,
    );
    assert.ok(lag < pollMs * 3 + 500, `reached in ${lag.toFixed(0)} ms`);
    for (const out of outputs)
      assert.ok(!out().includes(db.server.password), 'the database password never appears in the logs');
  });
});
