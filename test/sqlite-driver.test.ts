/**
 * The SQLite driver is chosen by the running Node.js (src/store/sqlite-driver.ts says why), and
 * nothing bypasses that choice: a direct import of better-sqlite3 would load the build that
 * aborts on Node 24.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import Database, { NAPI_FOR_V13, SQLITE_DRIVER } from '../src/store/sqlite-driver.js';
import { ROOT } from './helpers/sharder.js';

test('the driver is better-sqlite3 13 where Node-API 10 exists, else 12, and it works', () => {
  const napi = Number(process.versions.napi);
  assert.equal(SQLITE_DRIVER, napi >= NAPI_FOR_V13 ? 'better-sqlite3-napi' : 'better-sqlite3');
  const wanted = napi >= NAPI_FOR_V13 ? /^13\./ : /^12\./;
  const pkg = JSON.parse(readFileSync(join(ROOT, 'node_modules', SQLITE_DRIVER, 'package.json'), 'utf8')) as { version: string };
  assert.match(pkg.version, wanted);
  const db = new Database(':memory:');
  try {
    assert.match((db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v, /^3\.\d+\.\d+$/);
  } finally {
    db.close();
  }
});

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return name === 'node_modules' ? [] : sources(p);
    return /\.(ts|js|mjs|cjs)$/.test(name) ? [p] : [];
  });
}

test('only src/store/sqlite-driver.ts imports better-sqlite3', () => {
  const direct = ['src', 'test', 'bench']
    .flatMap((d) => sources(join(ROOT, d)))
    // Type-only imports load nothing at run time and are fine.
    .filter((f) => readFileSync(f, 'utf8').split('\n').some((l) => !/^\s*import type /.test(l) && /(from\s+|import\s*\(\s*|require\s*\(\s*)['"]better-sqlite3(-napi)?['"]/.test(l)))
    .map((f) => relative(ROOT, f))
    .filter((f) => f !== join('src', 'store', 'sqlite-driver.ts'));
  assert.deepEqual(direct, [], 'import Database from src/store/sqlite-driver.js instead');
});
