/**
 * Every test file sits in a tier, so that `npm run test:unit` (seconds), `test:integration` and
 * `test:e2e` each run what their name says and `npm test` runs them all: a file anywhere else
 * under test/ would run in none of them.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helpers/sharder.js';

const TIERS = ['unit', 'integration', 'e2e'];

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return testFiles(path);
    return e.name.endsWith('.test.ts') ? [relative(ROOT, path)] : [];
  });
}

test('every *.test.ts is directly in test/unit, test/integration or test/e2e', () => {
  const files = testFiles(join(ROOT, 'test'));
  assert.ok(files.length > 0);
  const outside = files.filter((f) => !TIERS.some((tier) => new RegExp(`^test/${tier}/[^/]+\\.test\\.ts$`).test(f)));
  assert.deepEqual(
    outside,
    [],
    'move these into a tier: test/unit (pure functions), test/integration (sockets, databases, in-process ' +
      'servers) or test/e2e (spawned processes, nginx, browser, systemd)',
  );
});

test('npm test runs every tier, and each tier has its own script', () => {
  const scripts = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> })
    .scripts;
  for (const tier of TIERS) {
    assert.ok(scripts.test!.includes(`test/${tier}/*.test.ts`), `npm test runs test/${tier}`);
    assert.ok(scripts[`test:${tier}`]?.includes(`test/${tier}/*.test.ts`), `npm run test:${tier} runs test/${tier}`);
  }
});

test("CONTRIBUTING.md's helper table names every file in test/helpers, and only those", () => {
  const doc = readFileSync(join(ROOT, 'CONTRIBUTING.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Test helpers'), doc.indexOf('\n## ', doc.indexOf('## Test helpers') + 1));
  const named = new Set(
    section
      .split('\n')
      .filter((l) => l.startsWith('| `'))
      .flatMap((l) => [...l.split('|')[1]!.matchAll(/`([^`]+\.ts)`/g)].map((m) => m[1]!)),
  );
  const files = readdirSync(join(ROOT, 'test/helpers')).filter((f) => f.endsWith('.ts'));
  assert.deepEqual(
    files.filter((f) => !named.has(f)),
    [],
    'add these to the table in CONTRIBUTING.md',
  );
  assert.deepEqual(
    [...named].filter((f) => !files.includes(f)),
    [],
    'the table in CONTRIBUTING.md names helpers that are gone',
  );
});
