/**
 * A fuzz of sharder.yml: wrong types, missing and unknown keys, huge files, alias bombs,
 * invalid UTF-8, deep nesting. Every outcome is either a valid Config or a ConfigError whose
 * problems name a key; never another exception. A sample of hostile files also goes through
 * `sharder check-config` (exit 2, the key named, no stack trace).
 * SHARDER_FUZZ_RUNS sets the number of generated cases (`npm run test:soak` raises it).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';
import { rawConfig, runCli } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';

const RUNS = Math.max(200, Math.floor(Number(process.env.SHARDER_FUZZ_RUNS ?? 2000) / 2));
const SEED = Number(process.env.SHARDER_FUZZ_SEED ?? 20261124);

/** Every key path the configuration knows, to aim the mutations at. */
const PATHS = [
  'listen',
  'workers',
  'mode',
  'control_listen',
  'database',
  'default_kind',
  'kind_header',
  'kinds',
  'proxy',
  'proxy.login_url',
  'proxy.connect_timeout_ms',
  'proxy.idle_timeout_ms',
  'proxy.websocket_idle_timeout_ms',
  'proxy.keep_alive_ms',
  'proxy.max_free_sockets',
  'proxy.forward_identity',
  'admin',
  'admin.token',
  'admin.token_file',
  'admin.tokens',
  'identity',
  'identity.header',
  'identity.trusted_proxies',
  'identity.max_length',
  'cookie',
  'cookie.name',
  'cookie.secure',
  'shard',
  'shard.redirect',
  'cache',
  'cache.max_entries',
  'store',
  'store.poll_ms',
  'store.timeout_ms',
  'store.busy_timeout_ms',
  'store.snapshot_file',
  'log',
  'log.level',
  'postgres',
  'postgres.pool_max',
  'postgres.idle_timeout_ms',
  'postgres.connection_timeout_ms',
  'postgres.statement_timeout_ms',
  'postgres.password_file',
  'postgres.ssl',
  'postgres.ssl.mode',
  'kinds.hub',
  'kinds.hub.buckets',
  'kinds.hub.buckets.0',
  'kinds.hub.buckets.0.name',
  'kinds.hub.buckets.0.upstream',
  'kinds.hub.buckets.0.weight',
  'kinds.hub.buckets.0.state',
  'kinds.hub.buckets.1.hub_api',
  'unknown_key',
  'kinds.hub.unknown',
];

const DELETE = Symbol('delete');

function mutate(raw: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let obj: Record<string, unknown> = raw;
  for (const p of parts.slice(0, -1)) {
    if (typeof obj[p] !== 'object' || obj[p] === null) obj[p] = {};
    obj = obj[p] as Record<string, unknown>;
  }
  const last = parts.at(-1)!;
  if (value === DELETE) delete obj[last];
  else obj[last] = value;
}

const value = fc.oneof(
  fc.constant(DELETE),
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double(),
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.constantFrom(
    '',
    '-1',
    '0',
    '1e309',
    'sqlite:',
    'postgres://',
    'http://',
    '::',
    '0.0.0.0:99999',
    '~',
    '{bucket}',
    '../../etc/passwd',
    '/',
    '.',
    'a'.repeat(5000),
  ),
  fc.array(fc.oneof(fc.string(), fc.integer(), fc.constant(null)), { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 8 }), fc.oneof(fc.string(), fc.integer()), { maxKeys: 3 }),
);

function assertClear(err: unknown): void {
  if (!(err instanceof ConfigError)) throw new Error(`not a ConfigError: ${(err as Error)?.stack ?? String(err)}`);
  assert.ok(err.problems.length > 0);
  for (const p of err.problems) {
    assert.ok(p.key.length > 0, `a problem without a key: ${p.message}`);
    assert.ok(p.message.length > 0 && !/\n\s+at /.test(p.message), `a problem without a clear message: ${p.message}`);
  }
}

function check(file: string): void {
  try {
    loadConfig({ file, env: {} });
  } catch (err) {
    assertClear(err);
  }
}

test(`config fuzz: ${RUNS} mutated files load or fail with a ConfigError naming the key`, (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'sharder.yml');
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom(...PATHS), value), { minLength: 1, maxLength: 4 }), (mutations) => {
      const raw = rawConfig(dir) as Record<string, unknown>;
      for (const [path, v] of mutations) mutate(raw, path, v);
      writeFileSync(file, stringify(raw));
      check(file);
    }),
    { seed: SEED, numRuns: RUNS },
  );
});

test(`config fuzz: ${RUNS} arbitrary texts and bytes as the file`, (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'sharder.yml');
  const yamlish = fc
    .array(
      fc.constantFrom(
        'kinds:',
        ' hub:',
        '  buckets:',
        '   - name: x',
        '&a',
        '*a',
        '[',
        ']',
        '{',
        '}',
        ':',
        '- ',
        '\n',
        '  ',
        '"',
        "'",
        '!!binary',
        '!!js/function',
        '%YAML 1.1',
        '---',
        '...',
        '<<: *a',
        '? ',
        '|',
        '>',
        '#',
        '\t',
        'listen: ',
        'workers: 9999',
      ),
      { maxLength: 30 },
    )
    .map((a) => a.join(''));
  fc.assert(
    fc.property(fc.oneof(yamlish, fc.string(), fc.uint8Array({ maxLength: 200 })), (content) => {
      writeFileSync(file, typeof content === 'string' ? content : Buffer.from(content));
      check(file);
    }),
    { seed: SEED + 1, numRuns: RUNS },
  );
});

/** Hostile files, each with the key the error must name. */
function hostile(dir: string): Array<[string, string | Buffer, RegExp]> {
  const alias = (i: number): string => String.fromCharCode(97 + i);
  const bomb = [
    'a: &a ["x","x","x","x","x","x","x","x","x","x"]',
    ...Array.from(
      { length: 9 },
      (_, i) =>
        `${alias(i + 1)}: &${alias(i + 1)} [${Array(10)
          .fill(`*${alias(i)}`)
          .join(',')}]`,
    ),
  ].join('\n');
  const valid = stringify(rawConfig(dir));
  return [
    ['alias bomb', bomb, /\(document\)|alias/i],
    ['huge file', `# ${'x'.repeat(12 * 1024 * 1024)}\n${valid}`, /\(file\).*bytes/],
    ['invalid UTF-8', Buffer.concat([Buffer.from(valid), Buffer.from([0xff, 0xfe, 0xc3, 0x28])]), /\(file\).*UTF-8/],
    ['deep nesting', `${'['.repeat(20_000)}${']'.repeat(20_000)}`, /\(top level\)|\(document\)|line/],
    ['top-level list', '- a\n- b\n', /\(top level\)/],
    ['wrong type', valid.replace(/poll_ms: 50/, 'poll_ms: fast'), /store\.poll_ms/],
    ['missing buckets', `${valid.split('kinds:')[0]}kinds:\n  hub: {}\n`, /kinds\.hub/],
    ['duplicate keys', `${valid}\nlisten: 127.0.0.1:1\n`, /line \d+|unique|duplicate/i],
    ['custom tag', `${valid}\nworkers: !!js/function "function(){}"\n`, /workers|line|tag/i],
  ];
}

test('hostile files (alias bomb, huge, invalid UTF-8, deep nesting, ...) fail in-process with a clear ConfigError', (t) => {
  const dir = tempDir(t);
  for (const [what, content, key] of hostile(dir)) {
    const file = join(dir, `${what.replaceAll(' ', '-')}.yml`);
    writeFileSync(file, content);
    let err: unknown;
    try {
      loadConfig({ file, env: {} });
    } catch (e) {
      err = e;
    }
    assert.ok(err !== undefined, `${what} was accepted`);
    assertClear(err);
    assert.match((err as Error).message, key, what);
  }
});

test('sharder check-config on hostile files: exit 2, the key named, no stack trace', async (t) => {
  const dir = tempDir(t);
  await Promise.all(
    hostile(dir).map(async ([what, content, key]) => {
      const file = join(dir, `${what.replaceAll(' ', '-')}.yml`);
      writeFileSync(file, content);
      const r = await runCli(['check-config', '--config', file]);
      assert.equal(r.code, 2, `${what}: ${r.stderr}`);
      assert.match(r.stderr, key, what);
      assert.doesNotMatch(r.stderr, /^\s+at /m, `${what}: a stack trace`);
    }),
  );
});
