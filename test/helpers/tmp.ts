import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HasAfter } from './context.js';

/** A fresh temporary directory, removed when the test (or suite) `t` ends. */
export function tempDir(t: HasAfter, prefix = 'sharder-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
