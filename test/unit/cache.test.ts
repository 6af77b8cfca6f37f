import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BoundedCache } from '../../src/core/cache.js';

test('the cache never holds more than its bound', () => {
  const c = new BoundedCache<number>(1000);
  for (let i = 0; i < 10_000; i++) {
    c.set(`k${i}`, i);
    assert.ok(c.size <= 1000, `size ${c.size} at ${i}`);
  }
  assert.equal(c.size, 1000, 'once full it holds exactly the bound');
  assert.equal(c.get('k9999'), 9999);
  assert.equal(c.get('k9000'), 9000);
  assert.equal(c.get('k0'), undefined);
});

test('setting an existing key does not grow the cache', () => {
  const c = new BoundedCache<number>(3);
  for (const k of ['a', 'b', 'c', 'a', 'a', 'b']) c.set(k, 1);
  assert.equal(c.size, 3);
  for (const k of ['a', 'b', 'c']) assert.equal(c.get(k), 1, k);
});

test('an entry in use is evicted at most once per turn of the cache; idle ones go', () => {
  const c = new BoundedCache<number>(100);
  let misses = 0;
  for (let i = 0; i < 1000; i++) {
    c.set(`k${i}`, i);
    if (c.get('hot') === undefined) {
      misses++;
      c.set('hot', 1);
    }
  }
  // 1,000 inserts are 10 turns of a 100-entry cache: a re-read of 'hot' at most once per turn.
  assert.ok(misses <= 11, `hot re-read ${misses} times`);
  assert.equal(c.get('k0'), undefined);
});

test('delete and clear; a bound of 0 caches nothing', () => {
  const c = new BoundedCache<number>(10);
  c.set('a', 1);
  c.delete('a');
  assert.equal(c.get('a'), undefined);
  c.set('b', 2);
  c.clear();
  assert.equal(c.size, 0);
  const none = new BoundedCache<number>(0);
  none.set('x', 1);
  assert.equal(none.get('x'), undefined);
  assert.equal(none.size, 0);
});
