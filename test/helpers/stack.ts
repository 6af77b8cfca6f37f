/**
 * The whole deployment for end-to-end tests: test hubs, an in-process sharder, and a real nginx
 * running the shipped configuration (copied to a temporary prefix) with the bucket part rendered
 * from the sharder's configuration.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RawConfig } from '../../src/config/types.js';
import { renderNginxConfig } from '../../src/nginx/render.js';
import { get, type Reply } from './http.js';
import { startHubs, type HubOptions, type TestHub } from './hubs.js';
import {
  deployMainConf,
  edit,
  enableAuthCache,
  httpPreamble,
  mainPreamble,
  nginxPrefix,
  shippedMainConf,
  startNginx,
  type RunningNginx,
} from './nginx.js';
import { startSharder, testConfig, type Running } from './sharder.js';
import type { HasAfter } from './context.js';

/** Users in the generated htpasswd: `alice` and `bob` with apr1 hashes, u0…u299 in {PLAIN}. */
export const BULK_USERS = 300;
export const password = (user: string): string => `pw-${user}`;
export const basic = (user: string, pw = password(user)): string =>
  `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;

/** An htpasswd file as an operator makes one: openssl's apr1 hashes, plus {PLAIN} lines for bulk users. */
export function writeHtpasswd(file: string): void {
  const hashed = ['alice', 'bob'].map((u) => {
    const r = spawnSync('openssl', ['passwd', '-apr1', password(u)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl passwd failed: ${r.stderr}`);
    return `${u}:${r.stdout.trim()}`;
  });
  const plain = Array.from({ length: BULK_USERS }, (_, i) => `u${i}:{PLAIN}${password(`u${i}`)}`);
  writeFileSync(file, `${[...hashed, ...plain].join('\n')}\n`, { mode: 0o644 });
}

export type Front =
  /** The shipped nginx.conf: auth_basic, $remote_user. */
  | 'basic'
  /** The compose stack's deploy/nginx.conf: auth_basic, $remote_user. */
  | 'deploy'
  /** The shipped oauth2-proxy.conf, with a stand-in for oauth2-proxy on `authPort`. */
  | { oauth2: number }
  /** A test-made server{} including sharder-server.conf, with `server` lines inside it. */
  | { server: string };

/** A bucket entry; `hub` is an index into the started hubs, giving its upstream. */
export interface StackBucket {
  name: string;
  hub?: number;
  state?: 'active' | 'draining';
  upstream?: string;
}

export interface StackOptions {
  buckets?: StackBucket[];
  hubs?: readonly string[];
  hubOptions?: HubOptions;
  front?: Front;
  cache?: boolean;
  /** Edits to the copied nginx/ files before nginx starts (file name → edit). */
  edits?: Record<string, (text: string) => string>;
  sharder?: RawConfig;
}

export interface Stack {
  nginx: RunningNginx;
  sharder: Running;
  hubs: TestHub[];
  rawConfig: RawConfig;
  /** Writes the rendered upstreams for a raw configuration into the prefix. */
  render(raw: RawConfig): void;
  /** GET (or another method) through nginx. */
  request(path: string, headers?: Record<string, string>, method?: string): Promise<Reply>;
  /** Through nginx as a user of the htpasswd file. */
  as(user: string, path?: string, headers?: Record<string, string>): Promise<Reply>;
  sharderAddress: string;
}

export async function startStack(t: HasAfter, opts: StackOptions = {}): Promise<Stack> {
  const hubs = await startHubs(t, opts.hubs ?? ['hub-0', 'hub-1', 'hub-2'], opts.hubOptions);
  const buckets = (opts.buckets ?? hubs.map((h, i): StackBucket => ({ name: h.name, hub: i }))).map((b) => ({
    name: b.name,
    ...(b.upstream !== undefined
      ? { upstream: b.upstream }
      : b.hub !== undefined
        ? { upstream: hubs[b.hub]!.url }
        : {}),
    ...(b.state ? { state: b.state } : {}),
  }));
  const rawConfig: RawConfig = { kinds: { hub: { buckets } }, ...opts.sharder };
  const sharder = await startSharder(t, rawConfig);
  const sharderAddress = `127.0.0.1:${sharder.sharder.port}`;

  const dir = nginxPrefix(t);
  writeHtpasswd(join(dir, 'htpasswd'));
  const render = (raw: RawConfig): void => {
    const config = testConfig(sharder.dir, raw);
    writeFileSync(
      join(dir, 'sharder', 'sharder-upstreams.conf'),
      renderNginxConfig(config, { sharders: [sharderAddress] }).text,
    );
  };
  render(rawConfig);
  if (opts.cache) enableAuthCache(dir);
  for (const [file, fn] of Object.entries(opts.edits ?? {})) {
    const path = join(dir, 'sharder', file);
    writeFileSync(path, fn(readFileSync(path, 'utf8')));
  }

  const front = opts.front ?? 'basic';
  let makeConf: (ports: number[]) => string;
  if (front === 'basic') {
    makeConf = ([port]) => shippedMainConf(dir, port!);
  } else if (front === 'deploy') {
    makeConf = ([port]) => deployMainConf(dir, port!);
  } else if ('oauth2' in front) {
    const file = join(dir, 'sharder', 'oauth2-proxy.conf');
    const shipped = readFileSync(file, 'utf8');
    writeFileSync(file, edit(shipped, /127\.0\.0\.1:4180/g, `127.0.0.1:${front.oauth2}`, 'oauth2-proxy address'));
    makeConf = ([port]) => {
      let server = edit(readFileSync(file, 'utf8'), /^\s*listen 80;$/m, `    listen 127.0.0.1:${port};`, 'listen 80');
      server = edit(server, /^\s*listen \[::\]:80;\n/m, '', 'listen [::]:80');
      writeFileSync(join(dir, 'sharder', 'oauth2-proxy.test.conf'), server);
      return (
        `${mainPreamble(dir)}\nhttp {\n${httpPreamble(dir)}\ninclude sharder/sharder-http.conf;\ninclude ` +
        'sharder/oauth2-proxy.test.conf;\n}\n'
      );
    };
  } else {
    makeConf = ([port]) =>
      `${mainPreamble(dir)}\nhttp {\n${httpPreamble(dir)}\ninclude sharder/sharder-http.conf;\nserver {\n ` +
      `listen 127.0.0.1:${port};\n${front.server}\n include sharder/sharder-server.conf;\n}\n}\n`;
  }
  const nginx = await startNginx(t, dir, makeConf);

  const request = (path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> =>
    get(nginx.url(path), headers, method);
  return {
    nginx,
    sharder,
    hubs,
    rawConfig,
    render,
    request,
    as: (user, path = '/hub/', headers = {}) => request(path, { authorization: basic(user), ...headers }),
    sharderAddress,
  };
}

/** The hub that answered, from a hub's JSON echo (undefined when nginx answered itself). */
export function hubOf(r: Reply): string | undefined {
  return typeof r.headers['x-hub'] === 'string' ? r.headers['x-hub'] : undefined;
}

export function cookieOf(r: Reply): string | undefined {
  const c = r.headers['set-cookie'];
  return Array.isArray(c) ? c.join('\n') : c;
}
