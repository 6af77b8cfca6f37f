/**
 * The generated pages (scripts/docs.ts) are what their source renders: a schema row changed
 * without `npm run docs` fails here, naming the page.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { GENERATED_PAGES, REPO_ROOT } from '../../scripts/docs.js';

/** The first line that differs, to say where. */
function firstDifference(have: string, want: string): string {
  const a = have.split('\n');
  const b = want.split('\n');
  const i = a.findIndex((line, n) => line !== b[n]);
  const n = i === -1 ? a.length : i;
  return (
    `line ${n + 1}: the page has ${JSON.stringify(a[n] ?? '(end of file)')}, the source renders ` +
    `${JSON.stringify(b[n] ?? '(end of file)')}`
  );
}

for (const page of GENERATED_PAGES) {
  test(`generated page ${page.path} is up to date`, () => {
    let have: string;
    try {
      have = readFileSync(join(REPO_ROOT, page.path), 'utf8');
    } catch {
      assert.fail(`${page.path} is missing: run npm run docs`);
    }
    const want = page.render();
    if (have !== want) assert.fail(`${page.path} is out of date: run npm run docs (${firstDifference(have, want)})`);
  });
}
