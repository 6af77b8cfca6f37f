/**
 * On a Node.js older than `engines` allows, the installed command refuses plainly (exit 2, the
 * version needed, no stack trace) before it loads anything that could crash there: the SQLite
 * driver segfaults on Node 20. Run with real older Node.js builds: SHARDER_TEST_OLD_NODE lists
 * their `node` binaries (colon-separated; .ci/run passes the official 20 and 22.13.1 builds),
 * else the system's /usr/bin/node when it is older.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { needs } from '../helpers/env.js';
import { ROOT } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';

const BIN = join(ROOT, 'bin/sharder.js');
const ENGINES = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines
  .node;

function versionOf(node: string): string | undefined {
  const r = spawnSync(node, ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

/** Older Node.js binaries to try the command with. */
function oldNodes(): string[] {
  const listed = (process.env.SHARDER_TEST_OLD_NODE ?? '').split(':').filter(Boolean);
  if (listed.length > 0) return listed;
  const system = '/usr/bin/node';
  const v = existsSync(system) ? versionOf(system) : undefined;
  return v !== undefined && !/^v(2[3-9]|[3-9]\d|22\.(1[4-9]|[2-9]\d))\./.test(v) ? [system] : [];
}

test('bin/sharder.js checks for the version that package.json engines names', () => {
  const m = /^>=(\d+)\.(\d+)\.(\d+)$/.exec(ENGINES);
  assert.ok(m, `engines.node is a plain minimum: ${ENGINES}`);
  const src = readFileSync(BIN, 'utf8');
  assert.match(src, new RegExp(`^var NEED = \\[${m[1]}, ${m[2]}, ${m[3]}\\];$`, 'm'));
});

test('the version check is written in syntax every Node.js parses', () => {
  const src = readFileSync(BIN, 'utf8');
  const check = src.slice(0, src.indexOf('import('));
  const code = check.replace(/\/\/.*$/gm, '').replace(/'[^'\n]*'/g, "''");
  for (const [what, re] of [
    ['const/let', /\b(const|let)\s/],
    ['arrow function', /=>/],
    ['template string', /`/],
    ['import/export statement or import.meta', /\b(import|export)\b/],
    ['optional chaining or ??', /\?\.|\?\?/],
  ] as const) {
    assert.doesNotMatch(code, re, `no ${what} before the check has run`);
  }
});

const olds = oldNodes();
test(
  'on an older Node.js the command says which version is needed and exits 2',
  {
    skip: needs(
      'old-node',
      olds.length > 0 ? undefined : 'no Node.js older than 22.14 found (set SHARDER_TEST_OLD_NODE)',
    ),
  },
  () => {
    for (const node of olds) {
      const version = versionOf(node);
      assert.ok(version, `${node} runs`);
      for (const args of [['--version'], ['serve'], ['buckets']]) {
        const r = spawnSync(node, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
        assert.equal(r.status, 2, `${version} ${args.join(' ')}: ${r.stderr}`);
        assert.equal(r.stdout, '');
        assert.equal(
          r.stderr,
          `sharder: Node.js 22.14.0 or newer is needed (supported: 22.14+, 24, 26); this is Node.js ${version} ` +
            `at ${node}.\n` +
            'Install a supported Node.js (README.md, "Supported Node.js versions"), then reinstall the sharder ' +
            'with it.\n',
        );
      }
    }
  },
);

test('a clone that was never built is told to run the build, not shown a stack trace', (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'bin'));
  copyFileSync(BIN, join(dir, 'bin/sharder.js'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
  const r = spawnSync(process.execPath, [join(dir, 'bin/sharder.js'), '--version'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.equal(r.stderr, 'sharder: dist/ is missing (a clone that was never built): run `npm run build` first.\n');
});
