/**
 * The composition root (src/process/): compose() builds the whole graph and starts nothing;
 * Sharder starts it, and a reload names each key it cannot apply (config/schema.ts's
 * restartOnlyChanges, in the schema's order).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { createLogger, silentLogger } from '../../src/log.js';
import { compose } from '../../src/process/compose.js';
import { Sharder } from '../../src/process/sharder.js';
import { SqliteStore } from '../../src/store/sqlite/index.js';
import { testConfig } from '../helpers/sharder.js';
import { logRecorder } from '../helpers/log.js';
import { tempDir } from '../helpers/tmp.js';

/**
 * What keeps the event loop busy past this turn, as a sorted list of resource types (timers,
 * sockets, watchers, …). An `Immediate` is left out: it runs once, at the next turn, and Node's
 * native code queues immediates of its own (a garbage collection can). CI saw one appear during
 * compose() on Node 22 and 24, though neither our code nor what compose() calls uses setImmediate.
 */
const resources = (): string[] =>
  process
    .getActiveResourcesInfo()
    .filter((r) => r !== 'Immediate')
    .sort();

/** The resources in `after` that `before` did not have, counting repeats (background work may finish). */
function added(before: string[], after: string[]): string[] {
  const left = [...before];
  return after.filter((r) => {
    const i = left.indexOf(r);
    if (i === -1) return true;
    left.splice(i, 1);
    return false;
  });
}

test('compose() builds every part, in proxy mode with metrics and both control listeners, without a timer, a socket or a watcher', async (t) => {
  const dir = tempDir(t);
  const config = testConfig(dir, { mode: 'proxy', metrics: { enabled: true, gc: true, listen: '127.0.0.1:0' } });
  const store = SqliteStore.open({ path: join(dir, 'sharder.db'), busyTimeoutMs: 5000 });
  t.after(() => store.close());
  // The real store, with a note of every member the graph reads from it while being built.
  const read: string[] = [];
  const observed = new Proxy(store, {
    get: (target, key) => (read.push(String(key)), Reflect.get(target, key, target)),
  });
  const before = resources();
  const g = compose(config, {
    log: silentLogger(),
    store: observed,
    snapshot: undefined,
    isWorker: false,
    startedAt: 0,
  });
  assert.deepEqual(added(before, resources()), [], 'nothing new keeps the event loop busy');
  assert.deepEqual(read, [], 'the store is not touched (no watch, no query) until start');
  assert.ok(g.proxy !== undefined && g.metrics !== null && g.control !== null && g.metricsListener !== null);
  for (const s of [g.server, g.control, g.metricsListener]) assert.equal(s.listening, false);
  assert.equal(g.server, g.proxy.server, 'in proxy mode the main listener is the proxy');
  assert.deepEqual([...g.kinds.keys()], ['hub']);
  assert.deepEqual(
    g.kinds.get('hub')!.buckets.map((b) => g.answers.of(b).cookie),
    ['hub-0', 'hub-1', 'hub-2'].map((b) => `hub=${b}; Path=/; HttpOnly; SameSite=Lax`),
  );
  assert.equal(g.table.state('hub').loaded, false, 'the table is loaded by start(), not here');
});

test('a reload names every key it cannot apply, once each, and applies the rest', async (t) => {
  const dir = tempDir(t);
  const { sink, events: lines } = logRecorder();
  const log = createLogger('info', sink);
  const sharder = await Sharder.start(testConfig(dir, { metrics: { listen: '127.0.0.1:0' } }), { log });
  t.after(() => sharder.stop(1000));
  const next = testConfig(dir, {
    listen: '127.0.0.1:1',
    control_listen: 'off',
    database: `sqlite:${join(dir, 'other.db')}`,
    mode: 'proxy',
    metrics: { enabled: false },
    kinds: { hub: { buckets: [{ name: 'hub-9' }] } },
  });
  sharder.reload(next);
  const ignored = lines.filter((l) => l.event === 'reload_ignored');
  assert.deepEqual(
    ignored.map((l) => [l.key, l.msg]),
    ['listen', 'mode', 'control_listen', 'database', 'metrics.enabled', 'metrics.listen'].map((k) => [
      k,
      `${k} changed: restart to apply`,
    ]),
  );
  assert.deepEqual(
    sharder.kind('hub')!.buckets.map((b) => b.name),
    ['hub-9'],
    'the buckets are applied',
  );
  assert.ok(lines.some((l) => l.event === 'reloaded'));
});
