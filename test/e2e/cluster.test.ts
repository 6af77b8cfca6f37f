import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { Agent, request } from 'undici';
import { rawConfig, spawnServe, writeConfig } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';

test('workers: 2 share the listener and the store; a dead worker is replaced; SIGTERM exits 0', async (t) => {
  const dir = tempDir(t);
  const file = writeConfig(dir, rawConfig(dir, { workers: 2 }));
  const { url, child, output, logged } = await spawnServe(t, file);
  // A worker logs "started" just after the primary sees it listening: wait for both lines.
  await logged(/"event":"cluster_started"/);
  await logged(/"event":"started"/, 2);
  const pids = [...output().matchAll(/"pid":(\d+),"event":"started"/g)].map((m) => Number(m[1]));
  assert.equal(new Set(pids).size, 2, 'two workers started');

  const agent = new Agent({ connections: 16 });
  t.after(() => agent.close());
  const ask = async (name: string): Promise<string> => {
    const r = await request(`${url}/auth`, { headers: { REMOTE_USER: name }, dispatcher: agent });
    await r.body.dump();
    assert.equal(r.statusCode, 200);
    return r.headers['x-shard-bucket'] as string;
  };
  const names = Array.from({ length: 300 }, (_, i) => `w-${i}`);
  const first = await Promise.all(names.flatMap((n) => [ask(n), ask(n)]));
  for (let i = 0; i < names.length; i++) assert.equal(first[2 * i], first[2 * i + 1], names[i]);
  const counts = ['hub-0', 'hub-1', 'hub-2'].map((b) => first.filter((x) => x === b).length / 2);
  assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `${counts.join(',')}`);

  process.kill(pids[0]!, 'SIGKILL');
  await logged(/"event":"started"/, 3);
  assert.match(output(), /"event":"worker_exited"/);
  assert.equal([...output().matchAll(/"event":"started"/g)].length, 3, 'a new worker started');
  const again = new Agent({ connections: 16 });
  t.after(() => again.close());
  for (const n of names.slice(0, 50)) {
    const r = await request(`${url}/auth`, { headers: { REMOTE_USER: n }, dispatcher: again });
    await r.body.dump();
    assert.equal(r.headers['x-shard-bucket'], first[2 * names.indexOf(n)]);
  }
  child.kill('SIGTERM');
  const [code] = await once(child, 'exit');
  assert.equal(code, 0);
});
