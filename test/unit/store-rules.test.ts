/** The backend-independent store rules (src/store/rules.ts), with plain objects. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  auditQuery,
  countFixes,
  deleteConflict,
  importObjects,
  listPage,
  objectKey,
  pendingMigrations,
  planImport,
  putConflict,
  repairEntry,
  toAssignment,
  toAuditEntry,
} from '../../src/store/rules.js';

test('conflicts say what the object is on, what was expected, and that nothing was written', () => {
  const cases: [Error, string][] = [
    [
      putConflict('hub', 'alice', 'a', 'b'),
      '"alice" of kind "hub" is on "a", not on "b" as expected: it changed meanwhile; nothing was written',
    ],
    [
      putConflict('hub', 'alice', null, 'b'),
      '"alice" of kind "hub" is not assigned, not on "b" as expected: it changed meanwhile; nothing was written',
    ],
    [
      putConflict('hub', 'alice', 'a', null),
      '"alice" of kind "hub" is on "a", not unassigned as expected: it changed meanwhile; nothing was written',
    ],
    [
      deleteConflict('hub', 'bob', undefined, 'a'),
      '"bob" of kind "hub" is not assigned, not on "a" as expected: it changed meanwhile; nothing was deleted',
    ],
  ];
  for (const [err, message] of cases)
    assert.deepEqual(
      { code: (err as { code?: string }).code, message: err.message },
      { code: 'SHARD_ERR_CONFLICT', message },
    );
});

test('an import is decided row by row: insert, unchanged, conflict, overwrite; a repeated name meets its earlier row', () => {
  const stored = new Map([
    [objectKey('hub', 'kept'), 'a'],
    [objectKey('hub', 'moved'), 'a'],
  ]);
  const rows = [
    { kind: 'hub', name: 'new', bucket: 'b', assignedAt: 5 },
    { kind: 'hub', name: 'kept', bucket: 'a' },
    { kind: 'hub', name: 'moved', bucket: 'c' },
    { kind: 'hub', name: 'new', bucket: 'c' },
  ];
  assert.deepEqual(
    importObjects(rows).map((o) => o.name),
    ['new', 'kept', 'moved'],
  );
  const keep = planImport(rows, stored, false);
  assert.deepEqual(keep.result, {
    inserted: 1,
    unchanged: 1,
    overwritten: 0,
    conflicts: [
      { kind: 'hub', name: 'moved', existing: 'a', wanted: 'c' },
      { kind: 'hub', name: 'new', existing: 'b', wanted: 'c' },
    ],
  });
  assert.deepEqual(keep.inserts, [rows[0]]);
  assert.deepEqual(keep.updates, []);
  const over = planImport(rows, stored, true);
  assert.deepEqual([over.result.inserted, over.result.overwritten, over.result.conflicts], [1, 2, []]);
  assert.deepEqual(over.inserts, [rows[3]], 'the object new to the store is inserted once, with its last row');
  assert.deepEqual(over.updates, [{ row: rows[2], from: 'a' }]);
  assert.deepEqual(
    over.audit.map((e) => [e.name, e.from, e.to]),
    [
      ['new', null, 'b'],
      ['moved', 'a', 'c'],
      ['new', 'b', 'c'],
    ],
  );
});

test('count repair: only wrong counts, missing and ghost buckets included, in (kind, bucket) order', () => {
  const kept = [
    { kind: 'hub', bucket: 'b', count: '7' },
    { kind: 'hub', bucket: 'a', count: 1 },
    { kind: 'hub', bucket: 'ghost', count: 3 },
    { kind: 'home', bucket: 'x', count: 2 },
  ];
  const real = [
    { kind: 'hub', bucket: 'a', count: 1 },
    { kind: 'hub', bucket: 'b', count: 2 },
    { kind: 'hub', bucket: 'c', count: '4' },
    { kind: 'home', bucket: 'x', count: 2 },
  ];
  assert.deepEqual(countFixes(kept, real), [
    { kind: 'hub', bucket: 'b', kept: 7, real: 2 },
    { kind: 'hub', bucket: 'c', kept: 0, real: 4 },
    { kind: 'hub', bucket: 'ghost', kept: 3, real: 0 },
  ]);
  assert.deepEqual(countFixes(kept, real, 'home'), []);
  assert.deepEqual(repairEntry({ kind: 'hub', bucket: 'b', kept: 7, real: 2 }, 'after restore'), {
    kind: 'hub',
    name: null,
    from: null,
    to: 'b',
    reason: 'count of "b" was 7, real 2: after restore',
  });
});

test('rows become Assignments and AuditEntries whether the driver hands numbers or strings', () => {
  assert.deepEqual(toAssignment({ kind: 'hub', name: 'a', bucket: 'b', assigned_at: '1700000000001' }), {
    kind: 'hub',
    name: 'a',
    bucket: 'b',
    assignedAt: 1700000000001,
  });
  assert.deepEqual(
    toAuditEntry({
      id: '3',
      at: 9,
      actor: 'cli:x',
      action: 'move',
      kind: 'hub',
      name: 'a',
      from_bucket: 'b',
      to_bucket: 'c',
      reason: null,
      batch: null,
    }),
    {
      id: 3,
      at: 9,
      actor: 'cli:x',
      action: 'move',
      kind: 'hub',
      name: 'a',
      from: 'b',
      to: 'c',
      reason: null,
      batch: null,
    },
  );
});

test('migrations: the pending ones in order; a newer database is refused', () => {
  const list = [
    { version: 1, name: 'one', sql: '' },
    { version: 2, name: 'two', sql: '' },
  ];
  assert.deepEqual(
    pendingMigrations(list, 0).map((m) => m.version),
    [1, 2],
  );
  assert.deepEqual(pendingMigrations(list, 2), []);
  assert.throws(() => pendingMigrations(list, 3), { code: 'SHARD_ERR_SCHEMA_TOO_NEW' });
});

test('audit queries: only the filters given, numbered in the dialect, limit last', () => {
  const pg = { param: (n: number) => `$${n}`, since: (p: string) => `at >= ms(${p})`, select: 'SELECT * FROM audit' };
  assert.deepEqual(auditQuery({ limit: 5 }, pg), {
    text: 'SELECT * FROM audit ORDER BY id DESC LIMIT $1',
    values: [5],
  });
  assert.deepEqual(auditQuery({ kind: 'hub', since: 7, before: 9, limit: 5 }, pg), {
    text: 'SELECT * FROM audit WHERE kind = $1 AND at >= ms($2) AND id < $3 ORDER BY id DESC LIMIT $4',
    values: ['hub', 7, 9, 5],
  });
  assert.equal(
    auditQuery({ action: 'move', limit: 1 }, { ...pg, param: () => '?' }).text,
    'SELECT * FROM audit WHERE action = ? ORDER BY id DESC LIMIT ?',
  );
});

test('listPage: the statement and parameters of each kind of page, the same for every backend', () => {
  const s = { listFirst: 'F', listAfter: 'A', listBucketFirst: 'BF', listBucketAfter: 'BA' };
  assert.deepEqual(listPage(s, 'hub', { limit: 10 }), { statement: 'F', params: ['hub', 10] });
  assert.deepEqual(listPage(s, 'hub', { after: 'u1', limit: 10 }), { statement: 'A', params: ['hub', 'u1', 10] });
  assert.deepEqual(listPage(s, 'hub', { bucket: 'b', limit: 5 }), { statement: 'BF', params: ['hub', 'b', 5] });
  assert.deepEqual(listPage(s, 'hub', { bucket: 'b', after: 'u1', limit: 5 }), {
    statement: 'BA',
    params: ['hub', 'b', 'u1', 5],
  });
});
