/**
 * The store contract, written once and run against every backend (SQLite now, PostgreSQL
 * through the same function), as oauth2-proxy runs RunSessionStoreTests per session backend.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { BucketPolicyInput } from '../../src/core/policy.js';
import type { Store } from '../../src/store/types.js';

export interface StoreFactory {
  /** Opens a new connection (a new Store) to one fresh database shared by the calls in one test. */
  (t: { after(fn: () => unknown): void }): Promise<{ open(): Promise<Store> }>;
}

const three: BucketPolicyInput[] = [
  { name: 'a', weight: 1, state: 'active' },
  { name: 'b', weight: 1, state: 'active' },
  { name: 'c', weight: 1, state: 'active' },
];

async function assertCountsReal(store: Store, kind: string): Promise<void> {
  const kept = await store.counts(kind);
  const real = await store.realCounts(kind);
  assert.deepEqual(Object.fromEntries([...kept].sort()), Object.fromEntries([...real].sort()), 'kept counts must equal COUNT(*) per bucket');
}

export function runStoreContract(backend: string, factory: StoreFactory, opts: { skip?: string | undefined } = {}): void {
  describe(`store contract: ${backend}`, { skip: opts.skip }, () => {
    test('an unknown object has no bucket', async (t) => {
      const store = await (await factory(t)).open();
      assert.equal(await store.lookup('hub', 'nobody'), undefined);
      await store.ping();
    });

    test('the first assign creates, later ones return the same bucket', async (t) => {
      const store = await (await factory(t)).open();
      const first = await store.assign('hub', 'alice', three);
      assert.deepEqual(first, { bucket: 'a', created: true });
      assert.deepEqual(await store.assign('hub', 'alice', three), { bucket: 'a', created: false });
      assert.equal(await store.lookup('hub', 'alice'), 'a');
      await assertCountsReal(store, 'hub');
    });

    test('emptiest bin: buckets fill evenly, ties to the first listed', async (t) => {
      const store = await (await factory(t)).open();
      const got: string[] = [];
      for (let i = 0; i < 7; i++) got.push((await store.assign('hub', `u${i}`, three)).bucket);
      assert.deepEqual(got, ['a', 'b', 'c', 'a', 'b', 'c', 'a']);
      assert.deepEqual(Object.fromEntries(await store.counts('hub')), { a: 3, b: 2, c: 2 });
      await assertCountsReal(store, 'hub');
    });

    test('draining buckets get nothing new; a bucket added later catches up', async (t) => {
      const store = await (await factory(t)).open();
      const drainB: BucketPolicyInput[] = [three[0]!, { ...three[1]!, state: 'draining' }];
      for (let i = 0; i < 4; i++) assert.equal((await store.assign('hub', `d${i}`, drainB)).bucket, 'a');
      // c is new: it receives new objects until it has caught up with a.
      const withC = [three[0]!, three[2]!];
      const got: string[] = [];
      for (let i = 0; i < 5; i++) got.push((await store.assign('hub', `n${i}`, withC)).bucket);
      assert.deepEqual(got, ['c', 'c', 'c', 'c', 'a']);
      await assertCountsReal(store, 'hub');
    });

    test('no active bucket is a coded error and stores nothing', async (t) => {
      const store = await (await factory(t)).open();
      await assert.rejects(store.assign('hub', 'x', [{ name: 'a', weight: 1, state: 'draining' }]), { code: 'SHARD_ERR_NO_BUCKET' });
      assert.equal(await store.lookup('hub', 'x'), undefined);
    });

    test('kinds are independent', async (t) => {
      const store = await (await factory(t)).open();
      await store.assign('hub', 'same', three);
      assert.equal((await store.assign('home', 'same', [three[2]!])).bucket, 'c');
      assert.equal(await store.lookup('hub', 'same'), 'a');
      assert.deepEqual(Object.fromEntries(await store.counts('home')), { c: 1 });
    });

    test('names are data, stored exactly as given', async (t) => {
      const store = await (await factory(t)).open();
      const names = ["x'; DROP TABLE assignments; --", 'Robert"); --', 'élève', '用户', 'a b', 'UPPER', 'upper', 'x'.repeat(256), '%_\\'];
      for (const n of names) await store.assign('hub', n, three);
      for (const n of names) assert.notEqual(await store.lookup('hub', n), undefined, n);
      assert.equal(await store.lookup('hub', 'Upper'), undefined);
      assert.equal([...(await store.realCounts('hub')).values()].reduce((a, b) => a + b), names.length);
    });

    test('concurrent first requests on two connections: one row per name, answers agree, counts even', async (t) => {
      const db = await factory(t);
      const [s1, s2] = await Promise.all([db.open(), db.open()]);
      const names = Array.from({ length: 300 }, (_, i) => `race-${i}`);
      const results = await Promise.all(names.flatMap((n) => [s1.assign('hub', n, three), s2.assign('hub', n, three)]));
      for (let i = 0; i < names.length; i++) {
        const [r1, r2] = [results[2 * i]!, results[2 * i + 1]!];
        assert.equal(r1.bucket, r2.bucket, names[i]);
        assert.equal(Number(r1.created) + Number(r2.created), 1, `exactly one created ${names[i]}`);
      }
      const counts = [...(await s1.realCounts('hub')).values()];
      assert.equal(counts.reduce((a, b) => a + b), 300);
      assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `counts ${counts}`);
      await assertCountsReal(s2, 'hub');
    });

    test('a closed store refuses with a coded error', async (t) => {
      const store = await (await factory(t)).open();
      await store.close();
      await assert.rejects(store.lookup('hub', 'x'), { code: 'SHARD_ERR_STORE_UNAVAILABLE' });
    });
  });
}
