/**
 * The operations module on a real SQLite store: look-ups, moves, deletes, migrations, doctor,
 * audit. (Import and export: transfer.test.ts; the HTTP and CLI faces: api/cli-admin tests.)
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bucketsRaw } from './helpers/sharder.js';
import { opsFixture, seed, who } from './helpers/ops.js';

const draining = (i: number) => ({ kinds: { hub: { buckets: bucketsRaw().map((b, j) => (j === i ? { ...b, state: 'draining' } : b)) } } });
const kinds = (buckets: Record<string, unknown>[]) => ({ kinds: { hub: { buckets } } });

test('find, list with a stable cursor, buckets with share', async (t) => {
  const f = opsFixture(t);
  for (const n of ['carol', 'alice', 'bob', 'dave']) await f.ops.assign({ name: n, bucket: n === 'dave' ? 'hub-1' : 'hub-0', ...who });
  const alice = await f.ops.find(undefined, 'alice');
  assert.equal(alice.bucket, 'hub-0');
  assert.equal(alice.in_config, true);
  assert.match(alice.assigned_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  await assert.rejects(f.ops.find(undefined, 'nobody'), { code: 'SHARD_ERR_NOT_FOUND' });
  await assert.rejects(f.ops.find('nokind', 'alice'), { code: 'SHARD_ERR_UNKNOWN_KIND' });
  await assert.rejects(f.ops.find(undefined, ' padded'), { code: 'SHARD_ERR_BAD_INPUT' });

  const p1 = await f.ops.list({ limit: 3 });
  assert.deepEqual(p1.items.map((o) => o.name), ['alice', 'bob', 'carol']);
  assert.notEqual(p1.next_cursor, null);
  const p2 = await f.ops.list({ limit: 3, cursor: p1.next_cursor! });
  assert.deepEqual(p2.items.map((o) => o.name), ['dave']);
  assert.equal(p2.next_cursor, null);
  const onHub0 = await f.ops.list({ bucket: 'hub-0', limit: 2 });
  assert.deepEqual(onHub0.items.map((o) => o.name), ['alice', 'bob']);
  await assert.rejects(f.ops.list({ bucket: 'hub-1', cursor: onHub0.next_cursor! }), { code: 'SHARD_ERR_BAD_INPUT' }, 'a cursor is bound to its query');
  await assert.rejects(f.ops.list({ cursor: 'garbage!' }), { code: 'SHARD_ERR_BAD_INPUT' });
  await assert.rejects(f.ops.list({ limit: 0 }), { code: 'SHARD_ERR_BAD_INPUT' });

  const b = await f.ops.buckets(undefined);
  assert.equal(b.total, 4);
  assert.deepEqual(b.buckets.map((x) => [x.name, x.count, x.share]), [['hub-0', 3, 0.75], ['hub-1', 1, 0.25], ['hub-2', 0, 0]]);
});

test('explicit assign and move check the bucket and the object; each change is audited', async (t) => {
  const f = opsFixture(t);
  assert.deepEqual(await f.ops.assign({ name: 'x', bucket: 'hub-2', ...who, reason: 'vip' }), { kind: 'hub', name: 'x', from: null, to: 'hub-2', changed: true, servers_stopped: false });
  assert.equal((await f.ops.assign({ name: 'x', bucket: 'hub-2', ...who })).changed, false);
  await assert.rejects(f.ops.assign({ name: 'x', bucket: 'hub-1', ...who }), { code: 'SHARD_ERR_CONFLICT' });
  await assert.rejects(f.ops.assign({ name: 'y', bucket: 'hub-9', ...who }), { code: 'SHARD_ERR_NO_SUCH_BUCKET', message: /hub-0, hub-1, hub-2/ });

  await assert.rejects(f.ops.move({ name: 'x', to: 'hub-9', ...who }), { code: 'SHARD_ERR_NO_SUCH_BUCKET' });
  await assert.rejects(f.ops.move({ name: 'ghost', to: 'hub-0', ...who }), { code: 'SHARD_ERR_NOT_FOUND' });
  await assert.rejects(f.ops.move({ kind: 'nokind', name: 'x', to: 'hub-0', ...who }), { code: 'SHARD_ERR_UNKNOWN_KIND' });
  assert.equal(await f.store.lookup('hub', 'x'), 'hub-2', 'failed moves change nothing');

  f.changed.length = 0;
  const m = await f.ops.move({ name: 'x', to: 'hub-0', actor: 'api:alice', reason: 'rebalance' });
  assert.deepEqual([m.from, m.to, m.changed], ['hub-2', 'hub-0', true]);
  assert.deepEqual(f.changed, [['hub', 'x']], 'the cache of this process is told');
  assert.equal((await f.ops.move({ name: 'x', to: 'hub-0', ...who })).changed, false);

  const log = await f.ops.audit({ name: 'x' });
  assert.deepEqual(log.items.map((e) => [e.action, e.from, e.to, e.actor, e.reason]), [
    ['move', 'hub-2', 'hub-0', 'api:alice', 'rebalance'],
    ['assign', null, 'hub-2', 'cli:tester', 'vip'],
  ]);
  await assert.rejects(f.ops.move({ name: 'x', to: 'hub-1', ...who, reason: 'a\u0000b' }), { code: 'SHARD_ERR_BAD_INPUT' });
});

test('delete: the next assignment is afresh by the policy; a missing name is an error', async (t) => {
  const f = opsFixture(t);
  await f.ops.assign({ name: 'gone', bucket: 'hub-2', ...who });
  const r = await f.ops.delete({ name: 'gone', ...who });
  assert.deepEqual([r.from, r.to], ['hub-2', null]);
  await assert.rejects(f.ops.delete({ name: 'gone', ...who }), { code: 'SHARD_ERR_NOT_FOUND' });
  const kind = f.config().kinds.get('hub')!;
  assert.equal((await f.store.assign('hub', 'gone', kind.buckets)).bucket, 'hub-0');
  assert.equal((await f.ops.audit({ action: 'delete' })).items.length, 1);
});

test('audit: filters, pages and bad filters', async (t) => {
  const f = opsFixture(t);
  for (let i = 0; i < 5; i++) await f.ops.assign({ name: `a${i}`, bucket: 'hub-0', ...who });
  const p1 = await f.ops.audit({ limit: 2 });
  assert.deepEqual(p1.items.map((e) => e.name), ['a4', 'a3']);
  const p2 = await f.ops.audit({ limit: 2, cursor: p1.next_cursor! });
  assert.deepEqual(p2.items.map((e) => e.name), ['a2', 'a1']);
  assert.equal((await f.ops.audit({ since: '2000-01-01' })).items.length, 5);
  assert.equal((await f.ops.audit({ since: new Date(Date.now() + 3600_000).toISOString() })).items.length, 0);
  await assert.rejects(f.ops.audit({ action: 'explode' }), { code: 'SHARD_ERR_BAD_INPUT', message: /assign, move, delete, migrate, import, repair/ });
  await assert.rejects(f.ops.audit({ since: 'yesterday' }), { code: 'SHARD_ERR_BAD_INPUT' });
  await assert.rejects(f.ops.audit({ cursor: p1.next_cursor!.slice(0, 5) }), { code: 'SHARD_ERR_BAD_INPUT' });
});

test('migrate to a named bucket: batches, audit per batch, counts right, nothing left', async (t) => {
  const f = opsFixture(t, draining(0));
  seed(f.store, 'hub', 'hub-0', 25);
  const batches: string[] = [];
  const r = await f.ops.migrate({ from: 'hub-0', to: 'hub-2', batchSize: 10, ...who, onBatch: (b) => void batches.push(`${b.id}:${b.moved}`) });
  assert.equal(r.moved, 25);
  assert.equal(r.batches, 3);
  assert.equal(r.remaining, 0);
  assert.deepEqual(r.targets, { 'hub-2': 25 });
  assert.deepEqual(batches, [`${r.id}/1:10`, `${r.id}/2:10`, `${r.id}/3:5`]);
  for (let n = 1; n <= 3; n++) {
    const rows = (await f.ops.audit({ batch: `${r.id}/${n}`, limit: 100 })).items;
    assert.equal(rows.length, n === 3 ? 5 : 10);
    assert.ok(rows.every((e) => e.action === 'migrate' && e.from === 'hub-0' && e.to === 'hub-2' && e.actor === 'cli:tester'));
  }
  assert.deepEqual(Object.fromEntries(await f.store.counts('hub')), { 'hub-2': 25 });
  assert.equal((await f.ops.doctor()).ok, true);
});

test('migrate spread: the policy fills the other active buckets evenly; the dry run is the same plan', async (t) => {
  const f = opsFixture(t, kinds([
    { name: 'hub-0', state: 'draining' }, { name: 'hub-1' }, { name: 'hub-2' }, { name: 'hub-3', state: 'draining' },
  ]));
  seed(f.store, 'hub', 'hub-0', 30);
  seed(f.store, 'hub', 'hub-1', 6, 'old');
  const plan = new Map<string, string>();
  const dry = await f.ops.migrate({ from: 'hub-0', dryRun: true, batchSize: 7, ...who, onBatch: (b) => b.planned.forEach((p) => plan.set(p.name, p.to)) });
  assert.equal(dry.dry_run, true);
  assert.equal(dry.planned, 30);
  assert.equal(dry.moved, 0);
  assert.equal(dry.remaining, 30, 'a dry run changes nothing');
  assert.deepEqual(dry.targets, { 'hub-2': 18, 'hub-1': 12 }, 'hub-2 catches up with hub-1 first; draining hub-3 gets nothing');
  assert.equal((await f.ops.audit({})).items.length, 0);

  const real = await f.ops.migrate({ from: 'hub-0', batchSize: 7, ...who });
  assert.deepEqual(real.targets, dry.targets);
  for (const [name, to] of plan) assert.equal(await f.store.lookup('hub', name), to, name);
  assert.deepEqual(Object.fromEntries(await f.store.counts('hub')), { 'hub-1': 18, 'hub-2': 18 });
});

test('migrate refuses an active source, itself, unknown buckets, and no target', async (t) => {
  const f = opsFixture(t);
  seed(f.store, 'hub', 'hub-0', 3);
  await assert.rejects(f.ops.migrate({ from: 'hub-0', ...who }), { code: 'SHARD_ERR_BUCKET_ACTIVE', message: /draining/ });
  const dry = await f.ops.migrate({ from: 'hub-0', dryRun: true, ...who });
  assert.match(dry.warnings[0]!, /active/);
  f.setConfig(draining(0));
  await assert.rejects(f.ops.migrate({ from: 'hub-0', to: 'hub-0', ...who }), { code: 'SHARD_ERR_BAD_INPUT', message: /onto itself/ });
  await assert.rejects(f.ops.migrate({ from: 'hub-0', to: 'hub-7', ...who }), { code: 'SHARD_ERR_NO_SUCH_BUCKET' });
  await assert.rejects(f.ops.migrate({ from: 'nope', ...who }), { code: 'SHARD_ERR_NO_SUCH_BUCKET' });
  await assert.rejects(f.ops.migrate({ from: 'hub-0', batchSize: 0, ...who }), { code: 'SHARD_ERR_BAD_INPUT' });
  f.setConfig(kinds([{ name: 'hub-0', state: 'draining' }, { name: 'hub-1', state: 'draining' }]));
  await assert.rejects(f.ops.migrate({ from: 'hub-0', ...who }), { code: 'SHARD_ERR_BAD_INPUT', message: /no other active bucket/ });
  assert.deepEqual(Object.fromEntries(await f.store.counts('hub')), { 'hub-0': 3 }, 'nothing moved');
});

test('a bucket removed from the configuration can be migrated (and doctor reports it until then)', async (t) => {
  const f = opsFixture(t);
  seed(f.store, 'hub', 'old-hub', 4);
  const before = await f.ops.doctor();
  assert.equal(before.ok, false);
  assert.deepEqual(before.checks.find((c) => c.check === 'buckets_in_config')?.details, [{ kind: 'hub', bucket: 'old-hub', objects: 4 }]);
  const r = await f.ops.migrate({ from: 'old-hub', ...who });
  assert.equal(r.moved, 4);
  assert.deepEqual(r.targets, { 'hub-0': 2, 'hub-1': 1, 'hub-2': 1 });
  assert.equal((await f.ops.doctor()).ok, true);
});

test('an interrupted migration resumes where it stopped when run again', async (t) => {
  const f = opsFixture(t, draining(1));
  seed(f.store, 'hub', 'hub-1', 50);
  await assert.rejects(f.ops.migrate({ from: 'hub-1', to: 'hub-0', batchSize: 10, ...who, onBatch: (b) => {
    if (b.batch === 2) throw new Error('operator pressed ^C');
  } }), /operator pressed/);
  assert.equal((await f.store.counts('hub')).get('hub-1'), 30, 'two whole batches moved, the rest untouched');
  const r = await f.ops.migrate({ from: 'hub-1', to: 'hub-0', batchSize: 10, ...who });
  assert.equal(r.moved, 30);
  assert.equal(r.remaining, 0);
  assert.equal((await f.ops.audit({ action: 'migrate', limit: 1000 })).items.length, 50);
  assert.equal((await f.ops.doctor()).ok, true);
});

test('doctor finds drifted counts, unknown kinds and buckets without upstream; --repair fixes counts', async (t) => {
  const f = opsFixture(t, kinds([{ name: 'hub-0', upstream: 'http://127.0.0.1:9000' }, { name: 'hub-1' }]));
  seed(f.store, 'hub', 'hub-0', 5);
  seed(f.store, 'gone-kind', 'x', 2);
  f.store.handle.prepare("UPDATE bucket_counts SET count = 9 WHERE kind = 'hub' AND bucket = 'hub-0'").run();
  const r = await f.ops.doctor();
  const by = Object.fromEntries(r.checks.map((c) => [c.check, c]));
  assert.equal(r.ok, false);
  assert.equal(by.counts!.status, 'error');
  assert.deepEqual(by.counts!.details, [{ kind: 'hub', bucket: 'hub-0', kept: 9, real: 5 }]);
  assert.deepEqual(by.kinds_in_config!.details, [{ kind: 'gone-kind', objects: 2 }]);
  assert.equal(by.upstreams!.status, 'warning');
  assert.deepEqual(by.upstreams!.details, [{ kind: 'hub', bucket: 'hub-1' }]);
  assert.equal(by.one_row_per_object!.status, 'ok');

  const fixed = await f.ops.repair({ actor: 'cli:tester', reason: 'after restore' });
  assert.deepEqual(fixed.repaired, [{ kind: 'hub', bucket: 'hub-0', kept: 9, real: 5 }]);
  assert.equal(fixed.report.checks.find((c) => c.check === 'counts')!.status, 'ok');
  assert.equal(fixed.report.ok, false, 'the unknown kind remains an error');
  const onlyHub = await f.ops.doctor('hub');
  assert.equal(onlyHub.ok, true);
  assert.equal(onlyHub.warnings, 1);
  assert.equal((await f.ops.audit({ action: 'repair' })).items[0]?.actor, 'cli:tester');
});
