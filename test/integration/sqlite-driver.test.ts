/**
 * One SQLite driver, better-sqlite3 13, run from the Node-API binary that ships inside its npm
 * package (prebuilds/<platform>.node), the same binary for every supported Node.js. Nothing is
 * compiled on install: the package declares no install script and sets `"gypfile": false`, but
 * the lockfile does not keep that flag, so `npm ci` (npm 11.19) still adds its implicit
 * `node-gyp rebuild` for the package's binding.gyp, which needs python3 and make even when it
 * has nothing to compile. package.json's `allowScripts` denies it, and decides every other
 * install script in the lockfile, so that npm has nothing to warn about.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helpers/sharder.js';

const require = createRequire(import.meta.url);
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  allowScripts?: Record<string, boolean>;
};

const LOCK = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
  packages: Record<string, { hasInstallScript?: boolean }>;
};

test('better-sqlite3 13 is the one SQLite dependency, and no install script of its runs', () => {
  const sqlite = Object.entries({ ...PKG.dependencies, ...PKG.optionalDependencies }).filter(
    ([name, spec]) => /sqlite/.test(name) || /sqlite/.test(spec),
  );
  assert.deepEqual(sqlite, [['better-sqlite3', '^13.2.0']]);
  const locked = Object.keys(LOCK.packages).filter((p) => /(^|\/)node_modules\/better-sqlite3[^/]*$/.test(p));
  assert.deepEqual(locked, ['node_modules/better-sqlite3']);
  assert.equal(PKG.allowScripts?.['better-sqlite3'], false);
  const installed = JSON.parse(readFileSync(require.resolve('better-sqlite3/package.json'), 'utf8')) as {
    version: string;
  };
  assert.match(installed.version, /^13\./);
});

const prebuilt =
  process.platform === 'linux' &&
  process.arch === 'x64' &&
  (process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime !== undefined;

test('allowScripts decides every install script in the lockfile', () => {
  const withScripts = Object.entries(LOCK.packages)
    .filter(([, p]) => p.hasInstallScript === true)
    .map(([path]) => path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length));
  assert.deepEqual(
    withScripts.filter((name) => typeof PKG.allowScripts?.[name] !== 'boolean'),
    [],
  );
});

test(
  'the binary that loads is the one shipped in the package, not a local build',
  { skip: prebuilt ? false : 'the check names the linux-x64 (glibc) prebuild' },
  () => {
    const Database = require('better-sqlite3') as typeof import('better-sqlite3');
    const db = new Database(':memory:');
    try {
      assert.match((db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v, /^3\.\d+\.\d+$/);
    } finally {
      db.close();
    }
    const pkgDir = join(require.resolve('better-sqlite3/package.json'), '..');
    const natives = Object.keys(require.cache).filter((f) => f.endsWith('.node'));
    // better-sqlite3 prefers build/Release/better_sqlite3.node when a compile left one there.
    assert.deepEqual(natives, [join(pkgDir, 'prebuilds', 'linux-x64.node')]);
  },
);
