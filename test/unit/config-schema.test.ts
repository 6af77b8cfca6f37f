/**
 * The config schema (src/config/schema.ts) is the one list of keys: what is derived from it —
 * the reload check, the environment variables, the flags — follows its rows, the rows are
 * consistent in themselves, and the config modules import each other without a circle.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ENV_KEYS, FLAG_KEYS, applyEnv } from '../../src/config/load.js';
import { RESTART_KEYS, SCHEMA, knownKeys, restartOnlyChanges } from '../../src/config/schema.js';
import type { RawConfig } from '../../src/config/types.js';
import { validateConfig } from '../../src/config/validate.js';

const base: RawConfig = { kinds: { hub: { buckets: [{ name: 'hub-0' }] } }, control_listen: '127.0.0.1:0' };
const check = (over: RawConfig) => validateConfig({ ...base, ...over }, null, new Map(), {});

test('schema: restartOnlyChanges names each restart key that changed, and nothing for live keys', () => {
  const pg = { database: 'postgres://db.example/sharder' };
  const changes: Array<[RawConfig, RawConfig, string[]]> = [
    [{}, {}, []],
    [{}, { listen: '127.0.0.1:9999' }, ['listen']],
    [{}, { workers: 2 }, ['workers']],
    [{}, { mode: 'proxy' }, ['mode']],
    [{}, { control_listen: 'off' }, ['control_listen']],
    [{}, { database: 'sqlite:./other.db' }, ['database']],
    [{}, { store: { busy_timeout_ms: 10 } }, ['database']],
    [pg, { ...pg, postgres: { pool_max: 3 } }, ['database']],
    [{}, { cache: { max_entries: 5 } }, ['cache.max_entries']],
    [{}, { store: { poll_ms: 1000 } }, ['store.poll_ms']],
    [pg, { ...pg, store: { snapshot_file: '/tmp/s.db' } }, ['store.snapshot_file']],
    [{}, { log: { level: 'warn', format: 'json' } }, ['log.level', 'log.format']],
    [{}, { metrics: { enabled: false } }, ['metrics.enabled']],
    [{}, { metrics: { gc: true } }, ['metrics.gc']],
    [{}, { metrics: { listen: '127.0.0.1:0' } }, ['metrics.listen']],
    [
      {},
      {
        identity: { header: 'X-User' },
        cookie: { secure: true },
        proxy: { keep_alive_ms: 1 },
        store: { timeout_ms: 200 },
        kinds: { hub: { buckets: [{ name: 'hub-0' }, { name: 'hub-1', weight: 2 }] } },
      },
      [],
    ],
  ];
  for (const [prev, next, want] of changes) {
    assert.deepEqual(restartOnlyChanges(check(prev), check(next)), want, JSON.stringify(next));
  }
  assert.deepEqual(
    new Set(changes.flatMap(([, , w]) => w)),
    new Set(RESTART_KEYS),
    'every restart key has a case above',
  );
});

test('schema: every key outside lists has its SHARDER_* variable, which sets that key', () => {
  for (const [path, variable] of ENV_KEYS) {
    const raw: RawConfig = {};
    applyEnv(raw, { [variable]: 'x' });
    let v: unknown = raw;
    for (const part of path.split('.')) v = (v as Record<string, unknown>)[part];
    assert.notEqual(v, undefined, `${variable} sets ${path}`);
  }
  const nested = SCHEMA.filter((r) => /\*|\[\]/.test(r.path)).map((r) => r.path);
  assert.deepEqual(
    ENV_KEYS.filter(([path]) => nested.includes(path)),
    [],
  );
  assert.deepEqual(ENV_KEYS.length, SCHEMA.length - nested.length);
});

test('schema: flags, defaults, ranges and values agree with the rows', () => {
  assert.deepEqual(FLAG_KEYS, [
    ['listen', 'listen'],
    ['control-listen', 'control_listen'],
    ['metrics-listen', 'metrics.listen'],
    ['database', 'database'],
    ['log-level', 'log.level'],
    ['mode', 'mode'],
  ]);
  for (const r of SCHEMA) {
    assert.ok(r.doc.length > 0 && !r.doc.includes('\n') && !r.doc.includes('|'), `${r.path}: one line of doc`);
    if (r.range !== undefined && typeof r.default === 'number')
      assert.ok(r.default >= r.range[0] && r.default <= r.range[1], `${r.path}: default within its range`);
    if (r.values !== undefined && r.default !== null)
      assert.ok(r.values.includes(r.default as string), `${r.path}: default is one of its values`);
    if (r.restartVia !== undefined)
      assert.equal(
        SCHEMA.find((x) => x.path === r.restartVia)?.reload,
        'restart',
        `${r.path}: restartVia names a restart key`,
      );
    if (r.type === 'secret' || r.type === 'secret file') assert.equal(r.secret, true, `${r.path}: secret`);
  }
  assert.equal(new Set(SCHEMA.map((r) => r.path)).size, SCHEMA.length, 'one row per key');
  // A key whose parent is a list entry or a named mapping is known there.
  assert.deepEqual(knownKeys('kinds.*.buckets[]'), ['name', 'upstream', 'weight', 'state', 'hub_api']);
  assert.deepEqual(knownKeys('kinds'), []);
});

test('schema: the config modules import each other without a circle (type imports included)', () => {
  const dir = join(import.meta.dirname, '../../src/config');
  const graph = new Map<string, string[]>();
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.ts'))) {
    const text = readFileSync(join(dir, f), 'utf8');
    graph.set(
      f,
      [...text.matchAll(/from '\.\/([\w-]+)\.js'/g)].map((m) => `${m[1]}.ts`),
    );
  }
  const state = new Map<string, 'open' | 'done'>();
  const visit = (f: string, path: string[]): void => {
    if (state.get(f) === 'done') return;
    assert.notEqual(state.get(f), 'open', `import circle: ${[...path, f].join(' → ')}`);
    state.set(f, 'open');
    for (const g of graph.get(f) ?? []) visit(g, [...path, f]);
    state.set(f, 'done');
  };
  for (const f of graph.keys()) visit(f, []);
  assert.ok(graph.size >= 10);
});

test('schema: checks are pure: only the loader and secrets.ts touch the file system or process.env', () => {
  const dir = join(import.meta.dirname, '../../src/config');
  for (const f of readdirSync(dir).filter(
    (n) => n.endsWith('.ts') && !['load.ts', 'secrets.ts', 'validate.ts'].includes(n),
  )) {
    const text = readFileSync(join(dir, f), 'utf8');
    assert.doesNotMatch(text, /from 'node:fs'|process\.env/, `${f} reads no file and no environment`);
  }
});
