/**
 * Another process holding the SQLite write lock: `node --import tsx sqlite-locker.ts FILE MS`
 * opens FILE, takes the write lock (BEGIN IMMEDIATE, one write), prints "locked", holds it for
 * MS milliseconds without touching its event loop, then rolls back and prints "released".
 */
import Database from 'better-sqlite3';

const [file, ms] = process.argv.slice(2);
const db = new Database(file, { timeout: 10_000 });
db.exec('BEGIN IMMEDIATE');
db.prepare('INSERT INTO bucket_counts (kind, bucket, count) VALUES (?, ?, 0) ON CONFLICT DO NOTHING').run(
  'locker',
  'locker',
);
process.stdout.write('locked\n');
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(ms));
db.exec('ROLLBACK');
db.close();
process.stdout.write('released\n');
