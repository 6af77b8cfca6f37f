/**
 * The console examples of the README's quick start and of docs/operations.md, run as shown
 * against a throwaway sharder.
 *
 * What is run: every ```console block of those pages, in page order, in one working folder
 * per page that holds the shipped sharder.yml (and, for operations.md, `sharder.sqlite`: an
 * original sharder's database, ORIGINAL below). A line starting with `$ ` is a command (a
 * trailing `\` continues it on the next line); the lines up to the next command are what it
 * prints. The page's `sharder serve` runs in that folder, on free ports.
 *
 * What is substituted, and nothing else: `127.0.0.1:8888` and `127.0.0.1:8889` become the
 * throwaway server's main and control addresses; `npx sharder` and `sharder` run the CLI from
 * the sources in that folder (as `npx sharder` does in a clone).
 *
 * What is asserted: every command exits 0, and the lines shown are printed, in that order
 * (lines a page leaves out, such as `Date:`, may come between them); `…` in a shown line,
 * with the spaces around it, stands for any text (a time, an absolute path).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { writeOriginalSqlite } from '../helpers/ops-suite.js';
import { ROOT, cliArgs, spawnServe } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';

interface Step {
  command: string;
  shown: string[];
  line: number;
}

/** The steps of every ```console block of a page. */
export function consoleSteps(markdown: string): Step[] {
  const steps: Step[] = [];
  const lines = markdown.split('\n');
  let inBlock = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!inBlock) {
      inBlock = line.trim() === '```console';
      continue;
    }
    if (line.trim() === '```') {
      inBlock = false;
      continue;
    }
    if (line.startsWith('$ ')) {
      let command = line.slice(2);
      const at = i + 1;
      while (command.endsWith('\\') && i + 1 < lines.length) command = `${command.slice(0, -1)} ${lines[++i]!.trim()}`;
      steps.push({ command, shown: [], line: at });
    } else {
      assert.ok(steps.length > 0, `line ${i + 1}: output before any command`);
      steps.at(-1)!.shown.push(line);
    }
  }
  return steps;
}

/** Whether `shown` appears in `printed` in order, `…` matching any text. */
export function printedInOrder(shown: readonly string[], printed: readonly string[]): string | null {
  let from = 0;
  for (const s of shown) {
    const parts = s
      .trim()
      .split(/\s*…\s*/)
      .map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    const re = new RegExp(`^${parts.join('.*')}$`);
    const at = printed.findIndex((p, i) => i >= from && re.test(p.trim()));
    if (at === -1) return s;
    from = at + 1;
  }
  return null;
}

/** The original sharder's database that docs/operations.md imports: three users, three placeholders. */
const ORIGINAL: [string, string, string][] = [
  ['hub', 'hub-0', 'dummy-hub-0'],
  ['hub', 'hub-1', 'dummy-hub-1'],
  ['hub', 'hub-2', 'dummy-hub-2'],
  ['hub', 'hub-1', 'yuvi'],
  ['hub', 'hub-2', 'ryan'],
  ['hub', 'hub-0', 'alice'],
];

const PAGES: { page: string; setup?: (dir: string) => void }[] = [
  { page: 'README.md' },
  { page: 'docs/operations.md', setup: (dir) => writeOriginalSqlite(join(dir, 'sharder.sqlite'), ORIGINAL) },
];

for (const { page, setup } of PAGES) {
  test(`${page}: every console example runs as shown`, { timeout: 120_000 }, async (t) => {
    const steps = consoleSteps(readFileSync(join(ROOT, page), 'utf8'));
    assert.ok(steps.length >= 2, `${page} has console examples (${steps.length})`);
    const dir = tempDir(t);
    copyFileSync(join(ROOT, 'sharder.yml'), join(dir, 'sharder.yml'));
    setup?.(dir);
    const env = { SHARDER_LISTEN: '127.0.0.1:0', SHARDER_CONTROL_LISTEN: '127.0.0.1:0' };
    const server = await spawnServe(t, null, env, [], { cwd: dir });
    assert.ok(server.control, 'the control listener is up');
    const main = new URL(server.url).host;
    const control = new URL(server.control).host;
    // `sharder` (and `npx sharder`) is the CLI from the sources, run in the page's folder.
    const cli = cliArgs([])
      .map((a) => `'${a.replaceAll("'", "'\\''")}'`)
      .join(' ');
    const prelude = `set -o pipefail\nsharder() { '${process.execPath}' ${cli} "$@"; }\n`;
    for (const step of steps) {
      const command = step.command
        .replaceAll('127.0.0.1:8888', main)
        .replaceAll('127.0.0.1:8889', control)
        .replace(/(^|[;&|]\s*)npx sharder\b/g, '$1sharder');
      const run = spawnSync('bash', ['-c', prelude + command], { cwd: dir, encoding: 'utf8', timeout: 60_000 });
      const where = `${page}:${step.line}: $ ${step.command}\n--- printed ---\n${run.stdout}${run.stderr}`;
      assert.equal(run.status, 0, where);
      const missing = printedInOrder(step.shown, run.stdout.replace(/\r/g, '').split('\n'));
      assert.equal(missing, null, `${where}\n--- not printed (in this order) ---\n${missing}`);
    }
  });
}

test('the example runner reads commands and output, and matches as it says', () => {
  const steps = consoleSteps('text\n```console\n$ a \\\n  --b\nout 1\n$ c\n```\n```sh\n$ not run\n```\n');
  assert.deepEqual(steps, [
    { command: 'a  --b', shown: ['out 1'], line: 3 },
    { command: 'c', shown: [], line: 6 },
  ]);
  assert.equal(printedInOrder(['x: …', 'z'], ['w', 'x: 12:00', 'y', 'z']), null);
  assert.equal(printedInOrder(['z', 'x: …'], ['x: 1', 'z']), 'x: …');
  assert.equal(printedInOrder(['a.b'], ['axb']), 'a.b');
});
