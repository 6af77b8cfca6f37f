/**
 * Another process holding the SQLite write lock (a CLI migration, a hand-run sqlite3 session)
 * must not stall the server: known users keep being answered at once, a new user waits
 * (without blocking anyone) and is placed when the lock goes, or gets a clear 503 when it
 * stays longer than store.busy_timeout_ms, and the next request after that succeeds.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSharder } from '../helpers/sharder.js';
import { get } from '../helpers/http.js';
import { holdLock } from '../helpers/lock.js';
import { tempDir } from '../helpers/tmp.js';

const auth = (url: string, user: string) => get(`${url}/auth`, { REMOTE_USER: user });

/** Waits for the locker to end: it may have exited already, and `once` would then wait forever. */
async function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
}

test('known users are answered while another process holds the write lock; a new user is placed once it is released', async (t) => {
  const dir = tempDir(t);
  const over = { store: { poll_ms: 50, busy_timeout_ms: 10_000 } };
  // Assign with one server, then ask a fresh one: its cache is empty, so known users are
  // read from the database, which WAL lets it do while the lock is held.
  const first = await startSharder(t, over, dir);
  const told = new Map<string, string>();
  for (let i = 0; i < 20; i++) {
    const r = await auth(first.url, `known-${i}`);
    assert.equal(r.status, 200);
    told.set(`known-${i}`, String(r.headers['x-shard-bucket']));
  }
  await first.sharder.stop(1000);
  const s = await startSharder(t, over, dir);

  const locker = await holdLock(join(dir, 'sharder.db'), 3000);
  const started = Date.now();
  const newcomer = auth(s.url, 'newcomer');
  let slowest = 0;
  let answered = 0;
  while (locker.exitCode === null && Date.now() - started < 2500) {
    for (const [name, bucket] of told) {
      const t0 = Date.now();
      const r = await auth(s.url, name);
      slowest = Math.max(slowest, Date.now() - t0);
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-shard-bucket'], bucket, `${name} moved`);
      answered++;
    }
  }
  // Blocking would show as a single request taking the whole 3 s lock.
  assert.ok(answered >= 20, `only ${answered} known-user answers while the lock was held`);
  assert.ok(slowest < 1000, `a known user waited ${slowest} ms while another process held the lock`);
  const r = await newcomer;
  assert.equal(r.status, 200, r.body);
  assert.ok(Date.now() - started >= 2900, 'the newcomer cannot have been written while the lock was held');
  await exited(locker);
});

test('a lock held longer than store.busy_timeout_ms gives a clear 503, and the next request succeeds without a restart', async (t) => {
  const s = await startSharder(t, { store: { poll_ms: 50, busy_timeout_ms: 300 } });
  assert.equal((await auth(s.url, 'before')).status, 200);
  const locker = await holdLock(join(s.dir, 'sharder.db'), 1500);
  const r = await auth(s.url, 'during');
  assert.equal(r.status, 503, r.body);
  assert.match(r.body, /SHARD_ERR_STORE_UNAVAILABLE/);
  assert.match(r.body, /locked by another connection for 300 ms/);
  assert.equal((await auth(s.url, 'before')).status, 200, 'a known user is still served');
  await exited(locker);
  const after = await auth(s.url, 'during');
  assert.equal(after.status, 200, after.body);
});
