/**
 * The stale-cache race: a move or delete announced while a lookup of the same object is in
 * flight. The order is forced by a store wrapper that holds the lookup after the store has
 * read the old bucket, so the announcement lands between the read and the caching.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { silentLogger } from '../../src/log.js';
import { Sharder } from '../../src/process/sharder.js';
import { SqliteStore } from '../../src/store/sqlite/index.js';
import type { AssignResult, ChangeListener, Store } from '../../src/store/types.js';
import { get } from '../helpers/http.js';
import { testConfig } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';
import type { HasAfter } from '../helpers/context.js';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** A sharder on a real SQLite store whose lookups can be held, and whose change feed the test drives. */
async function gatedSharder(t: HasAfter) {
  const dir = tempDir(t);
  const inner = SqliteStore.open({ path: join(dir, 'sharder.db'), busyTimeoutMs: 5000 });
  t.after(() => inner.close());
  let announce: ChangeListener | undefined;
  let hold: { read: ReturnType<typeof deferred>; release: ReturnType<typeof deferred> } | undefined;
  const reads: string[] = [];
  const assign = async (...args: Parameters<Store['assign']>): Promise<AssignResult> => {
    const r = await inner.assign(...args);
    reads.push(r.bucket);
    const h = hold;
    hold = undefined;
    if (h) {
      h.read.resolve();
      await h.release.promise;
    }
    return r;
  };
  // The feed is the test's: the notification arrives exactly when the test says.
  const watch = (listener: ChangeListener): (() => void) => {
    announce = listener;
    return () => undefined;
  };
  const store = new Proxy(inner, {
    get(target, prop) {
      if (prop === 'assign') return assign;
      if (prop === 'watch') return watch;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as Store;
  const sharder = await Sharder.start(testConfig(dir), { log: silentLogger(), store });
  t.after(() => sharder.stop(1000));
  return {
    inner,
    reads,
    url: sharder.url,
    announce: (kind: string | null, name: string | null) => announce!(kind, name),
    /** The next lookup stops after reading; resolves when it has read. */
    holdNext() {
      const h = { read: deferred(), release: deferred() };
      hold = h;
      return h;
    },
  };
}

const bucketOf = async (url: string, user: string): Promise<unknown> =>
  (await get(`${url}/auth`, { REMOTE_USER: user })).headers['x-shard-bucket'];

for (const scope of ['the object', 'its whole kind', 'every kind'] as const) {
  test(`a move announced for ${scope} while a lookup is in flight: the old bucket is neither cached nor answered`, async (t) => {
    const s = await gatedSharder(t);
    await s.inner.put('hub', 'x', 'hub-0', { actor: 'cli:tester' });
    const h = s.holdNext();
    const first = bucketOf(s.url, 'x');
    await h.read.promise; // the store has read hub-0 ...
    await s.inner.put('hub', 'x', 'hub-2', { actor: 'cli:other-process' }); // ... then another process moves x
    if (scope === 'the object') s.announce('hub', 'x');
    else if (scope === 'its whole kind') s.announce('hub', null);
    else s.announce(null, null);
    h.release.resolve();
    assert.equal(await first, 'hub-2', 'the in-flight request is answered by a read made after the announcement');
    assert.deepEqual(s.reads, ['hub-0', 'hub-2']);
    assert.equal(await bucketOf(s.url, 'x'), 'hub-2', 'the cache holds the new bucket');
    assert.deepEqual(s.reads, ['hub-0', 'hub-2'], 'answered from the cache');
  });
}

test('an announcement about another object leaves an in-flight lookup alone', async (t) => {
  const s = await gatedSharder(t);
  await s.inner.put('hub', 'x', 'hub-1', { actor: 'cli:tester' });
  const h = s.holdNext();
  const first = bucketOf(s.url, 'x');
  await h.read.promise;
  s.announce('hub', 'someone-else');
  s.announce('other-kind', null);
  h.release.resolve();
  assert.equal(await first, 'hub-1');
  assert.equal(await bucketOf(s.url, 'x'), 'hub-1');
  assert.deepEqual(s.reads, ['hub-1'], 'one read, then cached');
});
