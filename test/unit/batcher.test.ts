import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Batcher } from '../../src/store/batcher.js';

/** A run function whose batches finish when the test says so. */
function controlled() {
  const batches: Array<{ inputs: number[]; finish: (out: Array<number | Error>) => void; fail: (e: Error) => void }> =
    [];
  const run = (inputs: number[]) =>
    new Promise<Array<number | Error>>((finish, fail) => batches.push({ inputs, finish, fail }));
  return { batches, run };
}

test('batcher: a lone call runs at once; calls arriving meanwhile leave together with the next batch', async () => {
  const { batches, run } = controlled();
  const b = new Batcher<number, number>(run, 3, 1);
  const first = b.push(1);
  assert.deepEqual(
    batches.map((x) => x.inputs),
    [[1]],
  );
  const rest = [2, 3, 4, 5].map((n) => b.push(n));
  const settled = Promise.allSettled(rest);
  assert.equal(b.waiting, 4);
  batches[0]!.finish([10]);
  assert.equal(await first, 10);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(
    batches.map((x) => x.inputs),
    [[1], [2, 3, 4]],
    'at most maxBatch per batch',
  );
  batches[1]!.finish([20, new Error('only this one'), 40]);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(batches[2]!.inputs, [5]);
  batches[2]!.fail(new Error('whole batch'));
  assert.deepEqual(
    (await settled).map((s) => (s.status === 'fulfilled' ? s.value : (s.reason as Error).message)),
    [20, 'only this one', 40, 'whole batch'],
  );
});

test('batcher: up to `concurrency` batches in flight', () => {
  const { batches, run } = controlled();
  const b = new Batcher<number, number>(run, 10, 2);
  for (let i = 0; i < 5; i++) void b.push(i).catch(() => undefined);
  assert.deepEqual(
    batches.map((x) => x.inputs),
    [[0], [1]],
  );
  assert.equal(b.waiting, 3);
});

test('batcher: a run function that throws synchronously rejects its batch and the batcher goes on', async () => {
  let calls = 0;
  const b = new Batcher<number, number>(
    (inputs) => {
      if (calls++ === 0) throw new Error('sync');
      return Promise.resolve(inputs.map((n) => n * 2));
    },
    10,
    1,
  );
  await assert.rejects(b.push(1), /sync/);
  assert.equal(await b.push(2), 4);
});
