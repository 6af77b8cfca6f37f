/**
 * The store contract, written once and run against every backend (SQLite now, PostgreSQL
 * through the same function), as oauth2-proxy runs RunSessionStoreTests per session backend.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { BucketPolicyInput } from '../../src/core/policy.js';
import type { AuditContext, Store } from '../../src/store/types.js';

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
  assert.deepEqual(
    Object.fromEntries([...kept].sort()),
    Object.fromEntries([...real].sort()),
    'kept counts must equal COUNT(*) per bucket',
  );
}

export function runStoreContract(
  backend: string,
  factory: StoreFactory,
  opts: { skip?: string | undefined } = {},
): void {
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
      await assert.rejects(store.assign('hub', 'x', [{ name: 'a', weight: 1, state: 'draining' }]), {
        code: 'SHARD_ERR_NO_BUCKET',
      });
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
      const names = [
        "x'; DROP TABLE assignments; --",
        'Robert"); --',
        'élève',
        '用户',
        'a b',
        'UPPER',
        'upper',
        'x'.repeat(256),
        '%_\\',
      ];
      for (const n of names) await store.assign('hub', n, three);
      for (const n of names) assert.notEqual(await store.lookup('hub', n), undefined, n);
      assert.equal(await store.lookup('hub', 'Upper'), undefined);
      assert.equal(
        [...(await store.realCounts('hub')).values()].reduce((a, b) => a + b),
        names.length,
      );
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
      assert.equal(
        counts.reduce((a, b) => a + b),
        300,
      );
      assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `counts ${counts.join(',')}`);
      await assertCountsReal(s2, 'hub');
    });

    runAdminContract(factory);

    test('a closed store refuses with a coded error', async (t) => {
      const store = await (await factory(t)).open();
      await store.close();
      await assert.rejects(store.lookup('hub', 'x'), { code: 'SHARD_ERR_STORE_UNAVAILABLE' });
    });
  });
}

const cli: AuditContext = { actor: 'cli:tester', reason: 'contract' };

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** The admin primitives (explicit assignment, moves, audit, export/import, repair). */
function runAdminContract(factory: StoreFactory): void {
  describe('admin primitives', () => {
    test('get returns the whole record', async (t) => {
      const store = await (await factory(t)).open();
      const before = Date.now();
      await store.assign('hub', 'alice', three);
      const got = await store.get('hub', 'alice');
      assert.equal(got?.bucket, 'a');
      assert.equal(got?.kind, 'hub');
      assert.equal(got?.name, 'alice');
      assert.ok(
        got.assignedAt >= before - 1000 && got.assignedAt <= Date.now() + 1000,
        `assignedAt ${got?.assignedAt}`,
      );
      assert.equal(await store.get('hub', 'bob'), undefined);
    });

    test('put assigns, moves, and is a no-op on the same bucket; each change audited', async (t) => {
      const store = await (await factory(t)).open();
      assert.deepEqual(await store.put('hub', 'x', 'b', cli), { from: null, to: 'b', changed: true });
      assert.deepEqual(await store.put('hub', 'x', 'c', { actor: 'api:ops', reason: 'rebalance' }), {
        from: 'b',
        to: 'c',
        changed: true,
      });
      assert.deepEqual(await store.put('hub', 'x', 'c', cli), { from: 'c', to: 'c', changed: false });
      assert.equal(await store.lookup('hub', 'x'), 'c');
      assert.deepEqual(Object.fromEntries(await store.counts('hub')), { c: 1 });
      await assertCountsReal(store, 'hub');
      const log = await store.audit({ kind: 'hub', name: 'x', limit: 10 });
      assert.deepEqual(
        log.map((e) => [e.action, e.from, e.to, e.actor, e.reason]),
        [
          ['move', 'b', 'c', 'api:ops', 'rebalance'],
          ['assign', null, 'b', 'cli:tester', 'contract'],
        ],
      );
      assert.ok(log[0]!.id > log[1]!.id);
    });

    test('put with expect writes only when the object is where the caller saw it', async (t) => {
      const store = await (await factory(t)).open();
      await store.put('hub', 'x', 'a', cli);
      await assert.rejects(store.put('hub', 'x', 'c', cli, { expect: 'b' }), { code: 'SHARD_ERR_CONFLICT' });
      await assert.rejects(store.put('hub', 'x', 'c', cli, { expect: null }), { code: 'SHARD_ERR_CONFLICT' });
      await assert.rejects(store.put('hub', 'new', 'c', cli, { expect: 'a' }), { code: 'SHARD_ERR_CONFLICT' });
      assert.equal(await store.lookup('hub', 'x'), 'a');
      assert.equal(await store.lookup('hub', 'new'), undefined);
      assert.equal((await store.audit({ kind: 'hub', limit: 10 })).length, 1);
      assert.equal((await store.put('hub', 'x', 'c', cli, { expect: 'a' })).changed, true);
      assert.equal((await store.put('hub', 'y', 'c', cli, { expect: null })).changed, true);
      await assertCountsReal(store, 'hub');
    });

    test('delete returns the old bucket, audits it, and the next assign chooses afresh', async (t) => {
      const store = await (await factory(t)).open();
      await store.put('hub', 'x', 'c', cli);
      await assert.rejects(store.delete('hub', 'x', cli, { expect: 'a' }), { code: 'SHARD_ERR_CONFLICT' });
      assert.equal(await store.delete('hub', 'x', { actor: 'cli:tester', reason: 'left' }), 'c');
      assert.equal(await store.delete('hub', 'x', cli), undefined);
      assert.equal(await store.lookup('hub', 'x'), undefined);
      await assertCountsReal(store, 'hub');
      assert.deepEqual(Object.fromEntries(await store.counts('hub')), {});
      assert.deepEqual(
        (await store.audit({ kind: 'hub', action: 'delete', limit: 10 })).map((e) => [e.name, e.from, e.to, e.reason]),
        [['x', 'c', null, 'left']],
      );
      assert.deepEqual(await store.assign('hub', 'x', three), { bucket: 'a', created: true });
    });

    test('list pages by name in byte order, by bucket, with a stable cursor', async (t) => {
      const store = await (await factory(t)).open();
      const names = ['b', 'a', 'B', 'é', 'z', 'a b', 'aa', '用户', 'Z'];
      for (const [i, n] of names.entries()) await store.put('hub', n, i % 2 === 0 ? 'a' : 'b', cli);
      await store.put('home', 'other-kind', 'a', cli);
      const order = [...names].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
      const seen: string[] = [];
      let after: string | undefined;
      for (let pages = 0; pages < 10; pages++) {
        const page = await store.list('hub', { after, limit: 4 });
        seen.push(...page.map((r) => r.name));
        if (page.length < 4) break;
        after = page.at(-1)!.name;
        // Changes between pages neither repeat nor skip objects that stay.
        if (pages === 0) {
          await store.delete('hub', order[0]!, cli);
          await store.put('hub', '0-new-before-cursor', 'a', cli);
        }
      }
      assert.deepEqual(seen, order);
      const onA = await store.list('hub', { bucket: 'a', limit: 100 });
      assert.ok(onA.every((r) => r.bucket === 'a' && r.kind === 'hub'));
      assert.deepEqual(
        onA.map((r) => r.name),
        onA.map((r) => r.name).sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))),
      );
      const afterFirst = await store.list('hub', { bucket: 'a', after: onA[0]!.name, limit: 100 });
      assert.deepEqual(
        afterFirst.map((r) => r.name),
        onA.slice(1).map((r) => r.name),
      );
      assert.deepEqual(await store.list('hub', { bucket: 'none', limit: 10 }), []);
    });

    test('moveBatch moves what is still where expected, audits each with the batch, and reports the rest stale', async (t) => {
      const store = await (await factory(t)).open();
      for (const n of ['m1', 'm2', 'm3']) await store.put('hub', n, 'a', cli);
      await store.put('hub', 'm3', 'b', cli); // moved by someone else meanwhile
      const r = await store.moveBatch(
        'hub',
        [
          { name: 'm1', from: 'a', to: 'c' },
          { name: 'm2', from: 'a', to: 'b' },
          { name: 'm3', from: 'a', to: 'c' },
          { name: 'gone', from: 'a', to: 'c' },
        ],
        { actor: 'cli:tester', reason: 'migrate a', batch: 'mig-1/1' },
      );
      assert.deepEqual(r, { moved: ['m1', 'm2'], stale: ['m3', 'gone'] });
      assert.equal(await store.lookup('hub', 'm1'), 'c');
      assert.equal(await store.lookup('hub', 'm3'), 'b');
      const log = await store.audit({ batch: 'mig-1/1', limit: 10 });
      assert.deepEqual(log.map((e) => [e.action, e.name, e.from, e.to]).sort(), [
        ['migrate', 'm1', 'a', 'c'],
        ['migrate', 'm2', 'a', 'b'],
      ]);
      await assertCountsReal(store, 'hub');
    });

    test('a failing moveBatch leaves every object untouched and nothing audited', async (t) => {
      const store = await (await factory(t)).open();
      for (const n of ['f1', 'f2']) await store.put('hub', n, 'a', cli);
      const before = (await store.audit({ limit: 100 })).length;
      await assert.rejects(
        store.moveBatch(
          'hub',
          [
            { name: 'f1', from: 'a', to: 'b' },
            { name: 'f2', from: 'a', to: null as unknown as string },
          ],
          { actor: 'cli:tester', batch: 'bad/1' },
        ),
      );
      assert.equal(await store.lookup('hub', 'f1'), 'a');
      assert.equal(await store.lookup('hub', 'f2'), 'a');
      assert.equal((await store.audit({ limit: 100 })).length, before);
      await assertCountsReal(store, 'hub');
    });

    test('export yields every assignment by kind then name, across pages', async (t) => {
      const store = await (await factory(t)).open();
      for (let i = 0; i < 25; i++)
        await store.put('hub', `u${String(i).padStart(2, '0')}`, ['a', 'b', 'c'][i % 3]!, cli);
      await store.put('home', 'h1', 'a', cli);
      await store.put('zeta', 'z1', 'b', cli);
      const rows = await all(store.export({ pageSize: 7 }));
      assert.deepEqual(
        rows.map((r) => `${r.kind}/${r.name}`),
        ['home/h1', ...Array.from({ length: 25 }, (_, i) => `hub/u${String(i).padStart(2, '0')}`), 'zeta/z1'],
      );
      assert.equal(rows[1]!.bucket, 'a');
      assert.equal(typeof rows[1]!.assignedAt, 'number');
      assert.deepEqual(
        (await all(store.export({ kind: 'zeta', pageSize: 1 }))).map((r) => r.name),
        ['z1'],
      );
      assert.deepEqual(await all(store.export({ kind: 'nothing' })), []);
      assert.deepEqual(await store.kinds(), ['home', 'hub', 'zeta']);
    });

    test('importBatch is idempotent, keeps assignedAt, reports conflicts, overwrites only when asked', async (t) => {
      const store = await (await factory(t)).open();
      await store.put('hub', 'exists', 'a', cli);
      const rows = [
        { kind: 'hub', name: 'i1', bucket: 'b', assignedAt: 1_600_000_000_123 },
        { kind: 'hub', name: 'exists', bucket: 'c' },
        { kind: 'hub', name: 'i2', bucket: 'c' },
        { kind: 'hub', name: 'i1', bucket: 'a' }, // repeated with another bucket: conflicts with its first row
      ];
      const imp: AuditContext = { actor: 'cli:tester', reason: 'import backup.csv', batch: 'imp-1/1' };
      assert.deepEqual(await store.importBatch(rows, { overwrite: false }, imp), {
        inserted: 2,
        unchanged: 0,
        overwritten: 0,
        conflicts: [
          { kind: 'hub', name: 'exists', existing: 'a', wanted: 'c' },
          { kind: 'hub', name: 'i1', existing: 'b', wanted: 'a' },
        ],
      });
      assert.equal((await store.get('hub', 'i1'))?.assignedAt, 1_600_000_000_123);
      assert.equal(await store.lookup('hub', 'exists'), 'a');
      const again = await store.importBatch(rows.slice(0, 3), { overwrite: false }, imp);
      assert.deepEqual(
        { ...again, conflicts: again.conflicts.length },
        { inserted: 0, unchanged: 2, overwritten: 0, conflicts: 1 },
      );
      const forced = await store.importBatch(
        [{ kind: 'hub', name: 'exists', bucket: 'c', assignedAt: 5 }],
        { overwrite: true },
        imp,
      );
      assert.deepEqual(forced, { inserted: 0, unchanged: 0, overwritten: 1, conflicts: [] });
      assert.deepEqual(await store.get('hub', 'exists'), { kind: 'hub', name: 'exists', bucket: 'c', assignedAt: 5 });
      const log = await store.audit({ action: 'import', limit: 10 });
      assert.deepEqual(
        log.map((e) => [e.name, e.from, e.to, e.batch]),
        [
          ['exists', 'a', 'c', 'imp-1/1'],
          ['i2', null, 'c', 'imp-1/1'],
          ['i1', null, 'b', 'imp-1/1'],
        ],
      );
      await assertCountsReal(store, 'hub');
    });

    test('audit filters by kind, name, action, batch and time, newest first, paged by id', async (t) => {
      const store = await (await factory(t)).open();
      for (let i = 0; i < 5; i++) await store.put('hub', `p${i}`, 'a', { actor: `cli:u${i}` });
      await store.put('home', 'p0', 'b', cli);
      await store.delete('hub', 'p1', cli);
      const page1 = await store.audit({ limit: 3 });
      assert.deepEqual(
        page1.map((e) => [e.kind, e.name, e.action]),
        [
          ['hub', 'p1', 'delete'],
          ['home', 'p0', 'assign'],
          ['hub', 'p4', 'assign'],
        ],
      );
      const page2 = await store.audit({ limit: 3, before: page1.at(-1)!.id });
      assert.deepEqual(
        page2.map((e) => e.name),
        ['p3', 'p2', 'p1'],
      );
      assert.deepEqual(
        (await store.audit({ kind: 'home', limit: 10 })).map((e) => e.name),
        ['p0'],
      );
      assert.deepEqual(
        (await store.audit({ kind: 'hub', name: 'p0', limit: 10 })).map((e) => e.actor),
        ['cli:u0'],
      );
      assert.deepEqual(
        (await store.audit({ action: 'delete', limit: 10 })).map((e) => e.name),
        ['p1'],
      );
      assert.deepEqual(await store.audit({ since: Date.now() + 60_000, limit: 10 }), []);
      assert.equal((await store.audit({ since: Date.now() - 60_000, limit: 100 })).length, 7);
      assert.deepEqual(await store.audit({ batch: 'none', limit: 10 }), []);
    });

    test('repairCounts finds nothing to repair when counts are right; duplicates finds none', async (t) => {
      const store = await (await factory(t)).open();
      for (let i = 0; i < 4; i++) await store.assign('hub', `r${i}`, three);
      await store.put('hub', 'r0', 'c', cli);
      await store.delete('hub', 'r1', cli);
      assert.deepEqual(await store.repairCounts(cli), []);
      assert.deepEqual(await store.repairCounts(cli, 'hub'), []);
      assert.deepEqual(await store.duplicates(10), []);
      assert.deepEqual(await store.audit({ action: 'repair', limit: 10 }), []);
    });

    test('a change through one connection is seen by another', async (t) => {
      const db = await factory(t);
      const [s1, s2] = await Promise.all([db.open(), db.open()]);
      await s1.put('hub', 'shared', 'b', cli);
      assert.equal(await s2.lookup('hub', 'shared'), 'b');
      await s2.moveBatch('hub', [{ name: 'shared', from: 'b', to: 'c' }], cli);
      assert.equal(await s1.lookup('hub', 'shared'), 'c');
      assert.equal((await s1.audit({ name: 'shared', limit: 5 }))[0]?.action, 'migrate');
    });
  });
}
