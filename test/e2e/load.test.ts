/**
 * Load: 1,000 concurrent keep-alive connections against /auth of a spawned `sharder serve`
 * for SHARDER_SOAK_SECONDS (10 in `npm test`, 60 in `npm run test:soak`): zero errors, every
 * answer 200, and resident memory flat (read from /proc at the start and end).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Agent, request } from 'undici';
import { rawConfig, spawnServe, writeConfig } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';

const SECONDS = Number(process.env.SHARDER_SOAK_SECONDS ?? 10);
const CONNECTIONS = 1000;
/** Growth allowed between start and end: V8 heap noise, not a leak of per-request memory. */
const RSS_SLACK_BYTES = 64 * 1024 * 1024;
const NAMES = 5000;

const rss = (pid: number): number =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
const mib = (b: number): string => `${(b / 1048576).toFixed(1)} MiB`;

test(`${CONNECTIONS} concurrent keep-alive connections for ${SECONDS} s against /auth: zero errors, memory flat`, async (t) => {
  const dir = tempDir(t);
  const file = writeConfig(dir, rawConfig(dir, { log: { level: 'info' } }));
  const server = await spawnServe(t, file);
  const pid = server.child.pid!;
  const agent = new Agent({ connections: CONNECTIONS, keepAliveTimeout: 60_000, pipelining: 1 });
  t.after(() => agent.destroy());

  const statuses = new Map<number, number>();
  const errors = new Map<string, number>();
  let sent = 0;
  let stop = false;
  /** Connection c asks for names c, c + CONNECTIONS, ...: `rounds` of them, or until stop. */
  const loop = async (c: number, rounds = Infinity): Promise<void> => {
    let i = c;
    for (let k = 0; !stop && k < rounds; k++) {
      sent++;
      try {
        const r = await request(`${server.url}/auth`, {
          dispatcher: agent,
          headers: { REMOTE_USER: `load-${i % NAMES}` },
        });
        await r.body.dump();
        statuses.set(r.statusCode, (statuses.get(r.statusCode) ?? 0) + 1);
      } catch (err) {
        const k = (err as { code?: string }).code ?? (err as Error).message;
        errors.set(k, (errors.get(k) ?? 0) + 1);
      }
      i += CONNECTIONS;
    }
  };
  // Warm-up: every name assigned once, so the measured part is the steady state.
  await Promise.all(Array.from({ length: CONNECTIONS }, (_, c) => loop(c, Math.ceil(NAMES / CONNECTIONS))));
  const startRss = rss(pid);
  const sentBefore = sent;
  stop = false;
  const started = Date.now();
  const loops = Array.from({ length: CONNECTIONS }, (_, c) => loop(c));
  const samples: number[] = [];
  while (Date.now() - started < SECONDS * 1000) {
    await new Promise((r) => setTimeout(r, 1000));
    samples.push(rss(pid));
  }
  stop = true;
  await Promise.all(loops);
  const endRss = rss(pid);
  t.diagnostic(
    `${sent - sentBefore} requests in ${SECONDS} s over ${CONNECTIONS} connections (+${sentBefore} warm-up); ` +
      `errors ${JSON.stringify(Object.fromEntries(errors))}; statuses ` +
      `${JSON.stringify(Object.fromEntries(statuses))}; RSS start ${mib(startRss)}, end ${mib(endRss)}, max ` +
      `${mib(Math.max(...samples))}`,
  );
  assert.deepEqual(Object.fromEntries(errors), {}, 'no transport errors');
  assert.deepEqual([...statuses.keys()], [200]);
  assert.ok(endRss - startRss < RSS_SLACK_BYTES, `resident memory grew from ${mib(startRss)} to ${mib(endRss)}`);
  server.child.kill('SIGTERM');
});
