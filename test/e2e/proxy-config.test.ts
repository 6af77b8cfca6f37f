/** Proxy mode's configuration: defaults, validation messages, environment overrides, --mode. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyEnv } from '../../src/config/load.js';
import type { RawConfig } from '../../src/config/types.js';
import { validateConfig } from '../../src/config/validate.js';
import { ConfigError } from '../../src/errors.js';
import { send } from '../helpers/client.js';
import { startHub } from '../helpers/hubs.js';
import { runCli, runCliProcess, spawnServe, writeConfig, rawConfig } from '../helpers/sharder.js';
import { tempDir } from '../helpers/tmp.js';
import { until } from '../helpers/wait.js';

const kinds = { hub: { buckets: [{ name: 'hub-0', upstream: 'http://127.0.0.1:9000' }] } };

function problems(raw: RawConfig, env: NodeJS.ProcessEnv = {}): string[] {
  const copy = structuredClone(raw);
  const sources = applyEnv(copy, env);
  try {
    validateConfig(copy, 'sharder.yml', sources);
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems.map((p) => `${p.source}: ${p.key}: ${p.message}`);
  }
}

test('proxy config: defaults', () => {
  const c = validateConfig({ kinds }, 'sharder.yml');
  assert.equal(c.mode, 'auth');
  assert.deepEqual(c.proxy, {
    loginUrl: null,
    connectTimeoutMs: 5_000,
    idleTimeoutMs: 300_000,
    websocketIdleTimeoutMs: 3_600_000,
    keepAliveMs: 4_000,
    maxFreeSockets: 256,
    forwardIdentity: true,
  });
});

test('proxy config: every value set, from the file and from the environment', () => {
  const raw = {
    kinds,
    mode: 'proxy',
    proxy: {
      login_url: '/oauth2/start?rd={next}',
      connect_timeout_ms: 1000,
      idle_timeout_ms: 0,
      websocket_idle_timeout_ms: 0,
      keep_alive_ms: 0,
      max_free_sockets: 8,
      forward_identity: false,
    },
  };
  const c = validateConfig(raw, 'sharder.yml');
  assert.equal(c.mode, 'proxy');
  assert.deepEqual(c.proxy, {
    loginUrl: '/oauth2/start?rd={next}',
    connectTimeoutMs: 1000,
    idleTimeoutMs: 0,
    websocketIdleTimeoutMs: 0,
    keepAliveMs: 0,
    maxFreeSockets: 8,
    forwardIdentity: false,
  });
  const env = {
    SHARDER_MODE: 'proxy',
    SHARDER_PROXY_LOGIN_URL: 'https://login.example.org/',
    SHARDER_PROXY_CONNECT_TIMEOUT_MS: '2000',
    SHARDER_PROXY_IDLE_TIMEOUT_MS: '3000',
    SHARDER_PROXY_WEBSOCKET_IDLE_TIMEOUT_MS: '4000',
    SHARDER_PROXY_KEEP_ALIVE_MS: '5000',
    SHARDER_PROXY_MAX_FREE_SOCKETS: '6',
    SHARDER_PROXY_FORWARD_IDENTITY: 'false',
  };
  const fromEnv: RawConfig = { kinds };
  const sources = applyEnv(fromEnv, env);
  const e = validateConfig(fromEnv, 'sharder.yml', sources);
  assert.equal(e.mode, 'proxy');
  assert.deepEqual(e.proxy, {
    loginUrl: 'https://login.example.org/',
    connectTimeoutMs: 2000,
    idleTimeoutMs: 3000,
    websocketIdleTimeoutMs: 4000,
    keepAliveMs: 5000,
    maxFreeSockets: 6,
    forwardIdentity: false,
  });
});

const cases: Array<{ name: string; raw: RawConfig; env?: NodeJS.ProcessEnv; want: string[] }> = [
  {
    name: 'unknown mode',
    raw: { kinds, mode: 'nginx' },
    want: ['sharder.yml: mode: must be one of auth, proxy, got the string "nginx"'],
  },
  {
    name: 'unknown mode from the environment',
    raw: { kinds },
    env: { SHARDER_MODE: 'Proxy' },
    want: ['environment: SHARDER_MODE (mode): must be one of auth, proxy, got the string "Proxy"'],
  },
  {
    name: 'unknown proxy key',
    raw: { kinds, proxy: { timeout: 5 } },
    want: [
      'sharder.yml: proxy.timeout: unknown key (known: login_url, connect_timeout_ms, idle_timeout_ms, ' +
        'websocket_idle_timeout_ms, keep_alive_ms, max_free_sockets, forward_identity)',
    ],
  },
  {
    name: 'proxy not a mapping',
    raw: { kinds, proxy: 'on' },
    want: ['sharder.yml: proxy: must be a mapping, got the string "on"'],
  },
  {
    name: 'login_url neither URL nor path',
    raw: { kinds, proxy: { login_url: 'login.example.org' } },
    want: [
      'sharder.yml: proxy.login_url: must be an http:// or https:// URL or a path starting with "/" ' +
        '(optionally with {next}, the requested URL), got the string "login.example.org"',
    ],
  },
  {
    name: 'login_url protocol-relative',
    raw: { kinds, proxy: { login_url: '//evil.example/' } },
    want: [
      'sharder.yml: proxy.login_url: must be an http:// or https:// URL or a path starting with "/" ' +
        '(optionally with {next}, the requested URL), got the string "//evil.example/"',
    ],
  },
  {
    name: 'login_url javascript:',
    raw: { kinds, proxy: { login_url: 'javascript:alert(1)' } },
    want: [
      'sharder.yml: proxy.login_url: must be an http:// or https:// URL or a path starting with "/" ' +
        '(optionally with {next}, the requested URL), got the string "javascript:alert(1)"',
    ],
  },
  {
    name: 'timeouts out of range',
    raw: {
      kinds,
      proxy: {
        connect_timeout_ms: 0,
        idle_timeout_ms: -1,
        websocket_idle_timeout_ms: 1.5,
        keep_alive_ms: '4s',
        max_free_sockets: 0,
      },
    },
    want: [
      'sharder.yml: proxy.connect_timeout_ms: must be a whole number from 100 to 600000, got number 0',
      'sharder.yml: proxy.idle_timeout_ms: must be a whole number from 0 to 86400000, got number -1',
      'sharder.yml: proxy.websocket_idle_timeout_ms: must be a whole number from 0 to 604800000, got number 1.5',
      'sharder.yml: proxy.keep_alive_ms: must be a whole number from 0 to 600000, got the string "4s"',
      'sharder.yml: proxy.max_free_sockets: must be a whole number from 1 to 65536, got number 0',
    ],
  },
  {
    name: 'forward_identity not a boolean',
    raw: { kinds },
    env: { SHARDER_PROXY_FORWARD_IDENTITY: 'maybe' },
    want: [
      'environment: SHARDER_PROXY_FORWARD_IDENTITY (proxy.forward_identity): must be true or false, got the ' +
        'string "maybe"',
    ],
  },
];

for (const c of cases) {
  test(`proxy config: ${c.name}`, () => {
    assert.deepEqual(problems(c.raw, c.env), c.want);
  });
}

test('proxy config: serve --mode is checked, and check-config accepts proxy settings', async (t) => {
  const dir = tempDir(t);
  const file = writeConfig(dir, rawConfig(dir, { mode: 'proxy', proxy: { login_url: '/login?next={next}' } }));
  const bad = await runCliProcess(['serve', '--config', file, '--mode', 'both']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^ {2}command line: --mode \(mode\): must be one of auth, proxy, got the string "both"$/m);
  const ok = await runCli(['check-config', '--config', file]);
  assert.equal(ok.code, 0, ok.stderr);
});

test('proxy config: serve --mode proxy forwards, and keeps proxying across a SIGHUP reload', async (t) => {
  const [a, b] = await Promise.all([startHub(t, 'hub-a'), startHub(t, 'hub-b')]);
  const dir = tempDir(t);
  const config = (upstream: string): RawConfig =>
    rawConfig(dir, { log: { level: 'info' }, kinds: { hub: { buckets: [{ name: 'hub-0', upstream }] } } });
  const file = writeConfig(dir, config(a.url));
  const { child, url, output } = await spawnServe(t, file, {}, ['--mode', 'proxy']);
  assert.match(output(), /"mode":"proxy"/);
  assert.equal(JSON.parse((await send(`${url}/x`, { headers: { REMOTE_USER: 'u' } })).text).hub, 'hub-a');
  writeConfig(dir, config(b.url));
  child.kill('SIGHUP');
  await until(
    async () => JSON.parse((await send(`${url}/x`, { headers: { REMOTE_USER: 'u' } })).text).hub === 'hub-b',
    5000,
    'hub-b answering after the reload',
    50,
  );
  assert.doesNotMatch(output(), /reload_ignored/);
});
