import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chooseBucket, type BucketPolicyInput } from '../../src/core/policy.js';

/** Assigns `n` objects one at a time with the pure policy; returns the counts in config order. */
function fill(buckets: BucketPolicyInput[], n: number, counts = new Map<string, number>()): number[] {
  for (let i = 0; i < n; i++) {
    const b = chooseBucket(buckets, counts);
    assert.ok(b !== undefined);
    counts.set(b, (counts.get(b) ?? 0) + 1);
  }
  return buckets.map((b) => counts.get(b.name) ?? 0);
}

const equal = (n: number): BucketPolicyInput[] =>
  Array.from({ length: n }, (_, i) => ({ name: `b${i}`, weight: 1, state: 'active' as const }));

test('one bucket: every object goes there (original test)', () => {
  assert.deepEqual(fill(equal(1), 50), [50]);
});

test('100 objects over 10 buckets: 10 each (original test)', () => {
  assert.deepEqual(fill(equal(10), 100), Array(10).fill(10));
});

test('99 objects over 10 buckets: counts [9,10,...,10] (original test)', () => {
  const counts = fill(equal(10), 99);
  assert.deepEqual(
    [...counts].sort((a, b) => a - b),
    [9, 10, 10, 10, 10, 10, 10, 10, 10, 10],
  );
  // Ties go to the bucket listed first, so the last bucket is the one short.
  assert.deepEqual(counts, [10, 10, 10, 10, 10, 10, 10, 10, 10, 9]);
});

test('weights 1:2:3 with 600 objects: exactly 100/200/300', () => {
  const b: BucketPolicyInput[] = [
    { name: 'w1', weight: 1, state: 'active' },
    { name: 'w2', weight: 2, state: 'active' },
    { name: 'w3', weight: 3, state: 'active' },
  ];
  assert.deepEqual(fill(b, 600), [100, 200, 300]);
});

test('ties go to the bucket listed first', () => {
  assert.equal(chooseBucket(equal(3), new Map()), 'b0');
  assert.equal(chooseBucket(equal(3), new Map([['b0', 1]])), 'b1');
});

test('draining buckets are never chosen and keep their count', () => {
  const b: BucketPolicyInput[] = [
    { name: 'd', weight: 1, state: 'draining' },
    { name: 'a', weight: 1, state: 'active' },
  ];
  assert.deepEqual(fill(b, 5, new Map([['a', 100]])), [0, 105]);
});

test('a bucket added later receives new objects until it has caught up', () => {
  const counts = new Map([
    ['b0', 10],
    ['b1', 10],
  ]);
  const got = Array.from({ length: 12 }, () => {
    const c = chooseBucket(equal(3), counts)!;
    counts.set(c, (counts.get(c) ?? 0) + 1);
    return c;
  });
  assert.deepEqual(got.slice(0, 10), Array(10).fill('b2'));
  assert.deepEqual(got.slice(10), ['b0', 'b1']);
});

test('no active bucket: undefined', () => {
  assert.equal(chooseBucket([], new Map()), undefined);
  assert.equal(chooseBucket([{ name: 'x', weight: 1, state: 'draining' }], new Map()), undefined);
});

test('buckets present in counts but not listed are ignored', () => {
  assert.equal(
    chooseBucket(
      equal(2),
      new Map([
        ['gone', 0],
        ['b0', 3],
      ]),
    ),
    'b1',
  );
});
