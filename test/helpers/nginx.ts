/**
 * A real nginx for tests: a temporary prefix holding a copy of the shipped nginx/ folder (as
 * DIR/sharder, the layout of /etc/nginx/sharder), started on free ports with `daemon off`,
 * stopped and removed when the test ends.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import {
  accessSync,
  chmodSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer as createHttpServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import WebSocket from 'ws';
import { needs } from './env.js';
import { freePort, raw } from './http.js';
import { childrenOf } from './proc.js';
import { ROOT } from './sharder.js';
import type { HasAfter } from './context.js';
import { until } from './wait.js';

export const NGINX_SRC = join(ROOT, 'nginx');

/** The nginx binary: on PATH, else where Debian puts it (not on a non-root user's PATH). */
export function nginxBinary(): string | undefined {
  const dirs = [
    ...(process.env.PATH ?? '').split(':').filter(Boolean),
    '/usr/sbin',
    '/usr/local/sbin',
    '/usr/local/nginx/sbin',
  ];
  for (const d of dirs) {
    try {
      accessSync(join(d, 'nginx'), constants.X_OK);
      return join(d, 'nginx');
    } catch {
      // not here
    }
  }
  return undefined;
}

const NGINX = nginxBinary();
/** Stop functions of the nginx processes running in each prefix. */
const running = new Map<string, (() => Promise<void>)[]>();
/** The declared skip for suites that need nginx (a failure when SHARDER_TEST_REQUIRE has nginx). */
export const nginxSkip = needs(
  'nginx',
  NGINX ? undefined : 'no nginx binary on PATH or in /usr/sbin (apt-get install nginx-light)',
);

/**
 * Shipped absolute paths and where they go under a test prefix. The shipped files use the
 * Debian layout; the test rewrites exactly these and nothing else.
 */
function pathRewrites(dir: string): [string, string][] {
  return [
    ['/etc/nginx/', `${dir}/`],
    ['/var/log/nginx/', `${dir}/logs/`],
    ['/var/lib/nginx/', `${dir}/lib/`],
    ['/run/nginx.pid', `${dir}/nginx.pid`],
  ];
}

export function rewritePaths(text: string, dir: string): string {
  let out = text;
  for (const [from, to] of pathRewrites(dir)) out = out.replaceAll(from, to);
  return out;
}

/** Replaces `from` with `to`, insisting that it occurs: a test must not silently test less. */
export function edit(text: string, from: string | RegExp, to: string, what = String(from)): string {
  const out = text.replace(
    typeof from === 'string' ? from : new RegExp(from.source, from.flags.includes('g') ? from.flags : `${from.flags}g`),
    to,
  );
  if (out === text) throw new Error(`test setup: ${what} not found in the shipped configuration`);
  return out;
}

/** Turns on the optional auth cache exactly as the operator would: by uncommenting its lines. */
export function enableAuthCache(dir: string): void {
  const http = join(dir, 'sharder', 'sharder-http.conf');
  writeFileSync(http, edit(readFileSync(http, 'utf8'), /^#(proxy_cache_path )/m, '$1', 'the #proxy_cache_path line'));
  const auth = join(dir, 'sharder', 'sharder-auth.conf');
  const text = readFileSync(auth, 'utf8');
  const on = text.replace(/^(\s*)#(proxy_cache|proxy_ignore_headers)/gm, '$1$2');
  if ((on.match(/^\s*proxy_cache/gm) ?? []).length < 4)
    throw new Error('test setup: the #proxy_cache lines of sharder-auth.conf are not there');
  writeFileSync(auth, on);
}

/**
 * A prefix directory for one nginx: readable by nginx's worker user (nginx runs its workers as
 * www-data or nobody when started as root), with the shipped folder copied to DIR/sharder.
 */
export function nginxPrefix(t: HasAfter): string {
  const dir = mkdtempSync(join(tmpdir(), 'sharder-nginx-'));
  // after() hooks run in the order registered: stop the nginx running here, then remove it.
  t.after(async () => {
    for (const stop of running.get(dir) ?? []) await stop();
    running.delete(dir);
    rmSync(dir, { recursive: true, force: true });
  });
  chmodSync(dir, 0o755);
  for (const sub of ['logs', 'lib', 'sharder']) mkdirSync(join(dir, sub), { mode: 0o755 });
  for (const f of readdirSync(NGINX_SRC)) {
    const text = readFileSync(join(NGINX_SRC, f), 'utf8');
    writeFileSync(join(dir, 'sharder', f), rewritePaths(text, dir), { mode: 0o644 });
  }
  return dir;
}

/** Temp paths, pid and error log inside the prefix, for a test-made main configuration. */
export function mainPreamble(dir: string): string {
  return [
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/logs/error.log notice;`,
    'worker_processes 1;',
    'events { worker_connections 512; }',
  ].join('\n');
}

export function httpPreamble(dir: string): string {
  return [
    `access_log ${dir}/logs/access.log;`,
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((k) => `${k}_temp_path ${dir}/lib/${k};`),
  ].join('\n');
}

/** The shipped nginx.conf, adapted to the prefix and listening on 127.0.0.1:port. */
export function shippedMainConf(dir: string, port: number): string {
  let text = rewritePaths(readFileSync(join(NGINX_SRC, 'nginx.conf'), 'utf8'), dir);
  text = edit(text, /^\s*listen 80;$/m, `        listen 127.0.0.1:${port};`, 'listen 80');
  text = edit(text, /^\s*listen \[::\]:80;\n/m, '', 'listen [::]:80');
  text = edit(text, /^http \{$/m, `http {\n${httpPreamble(dir)}`, 'http {');
  return text;
}

export const DEPLOY_NGINX_CONF = join(ROOT, 'deploy', 'nginx.conf');

/**
 * The compose stack's deploy/nginx.conf, adapted to the prefix: what only makes sense in the
 * container (its user, logging to the container's output, the image's mime.types) is replaced,
 * and it listens on 127.0.0.1:port. Everything else, the authentication included, is as shipped.
 */
export function deployMainConf(dir: string, port: number): string {
  writeFileSync(join(dir, 'mime.types'), 'types {\n    text/html html;\n}\n', { mode: 0o644 });
  let text = rewritePaths(readFileSync(DEPLOY_NGINX_CONF, 'utf8'), dir);
  text = edit(text, /^user nginx;$/m, '', 'user nginx');
  text = edit(
    text,
    /^error_log stderr warn;$/m,
    `error_log ${dir}/logs/error.log notice;\npid ${dir}/nginx.pid;`,
    'error_log stderr',
  );
  text = edit(text, /^\s*access_log \/dev\/stdout;\n/m, '', 'access_log /dev/stdout');
  text = edit(text, /^\s*listen 80;$/m, `        listen 127.0.0.1:${port};`, 'listen 80');
  text = edit(text, /^http \{$/m, `http {\n${httpPreamble(dir)}`, 'http {');
  return text;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** `nginx -t` on a configuration file; returns nginx's verdict and messages. */
export function nginxTest(dir: string, conf: string): { ok: boolean; output: string } {
  const r = spawnSync(NGINX!, ['-t', '-p', `${dir}/`, '-c', conf, '-e', `${dir}/logs/error.log`], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

export interface RunningNginx {
  dir: string;
  conf: string;
  ports: number[];
  url: (path?: string, port?: number) => string;
  /** `nginx -s reload`, as an operator runs it; resolves when the new workers serve. */
  reload(): Promise<void>;
  errorLog(): string;
  stop(): Promise<void>;
}

/**
 * Starts nginx on `nPorts` free ports with the configuration `makeConf(ports)` written to
 * DIR/nginx.conf. Retries with other ports when one was taken in the meantime.
 */
export async function startNginx(
  t: HasAfter,
  dir: string,
  makeConf: (ports: number[]) => string,
  nPorts = 1,
): Promise<RunningNginx> {
  const conf = join(dir, 'nginx.conf');
  for (let attempt = 0; ; attempt++) {
    const ports = await Promise.all(Array.from({ length: nPorts }, freePort));
    writeFileSync(conf, makeConf(ports), { mode: 0o644 });
    writeFileSync(join(dir, 'logs/error.log'), '');
    const child: ChildProcess = spawn(
      NGINX!,
      ['-p', `${dir}/`, '-c', conf, '-e', `${dir}/logs/error.log`, '-g', 'daemon off;'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
    const exited = once(child, 'exit');
    const stop = async (): Promise<void> => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    };
    t.after(stop);
    running.set(dir, [...(running.get(dir) ?? []), stop]);
    const errorLog = (): string =>
      existsSync(join(dir, 'logs/error.log')) ? readFileSync(join(dir, 'logs/error.log'), 'utf8') : '';
    // No event says nginx listens: try its ports until they answer, or it exits.
    let up = false;
    await until(
      async () => child.exitCode !== null || (up = (await Promise.all(ports.map(canConnect))).every(Boolean)),
      10_000,
      'nginx listening',
      20,
    ).catch(() => undefined);
    if (up) {
      return {
        dir,
        conf,
        ports,
        url: (path = '/', port = ports[0]!) => `http://127.0.0.1:${port}${path}`,
        errorLog,
        stop,
        async reload() {
          const before = childrenOf(child.pid!);
          const r = spawnSync(NGINX!, ['-p', `${dir}/`, '-c', conf, '-e', `${dir}/logs/error.log`, '-s', 'reload'], {
            encoding: 'utf8',
            timeout: 20_000,
          });
          if (r.status !== 0) throw new Error(`nginx -s reload failed:\n${r.stderr}`);
          await until(
            () => {
              const now = childrenOf(child.pid!);
              return now.length > 0 && !now.some((p) => before.includes(p));
            },
            10_000,
            'nginx replacing its workers after reload',
            20,
          ).catch((err: Error) => {
            throw new Error(`${err.message}:\n${errorLog()}`);
          });
        },
      };
    }
    await stop();
    const log = `${output}\n${errorLog()}`;
    if (/Address already in use/.test(log) && attempt < 5) continue;
    throw new Error(`nginx did not start:\n${log}`);
  }
}

/** An answer read off a raw socket: header lines as sent, body decoded (chunked or not). */
export interface RawReply {
  status: number;
  /** [name, value] in the order received, names as spelled. */
  headers: [string, string][];
  header(name: string): string | undefined;
  body: string;
}

/** Decodes an HTTP/1.1 response read until the server closed the connection. */
export function parseRawReply(text: string): RawReply {
  const end = text.indexOf('\r\n\r\n');
  if (end < 0) throw new Error(`no complete response head in ${JSON.stringify(text.slice(0, 200))}`);
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const headers = lines.map((l): [string, string] => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]);
  const header = (name: string): string | undefined =>
    headers.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1];
  let body = text.slice(end + 4);
  if (/^chunked$/i.test(header('transfer-encoding') ?? '')) {
    let out = '';
    for (let at = 0; ;) {
      const eol = body.indexOf('\r\n', at);
      const size = parseInt(body.slice(at, eol), 16);
      if (!(size > 0)) break;
      out += body.slice(eol + 2, eol + 2 + size);
      at = eol + 2 + size + 2;
    }
    body = out;
  }
  return {
    status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0),
    headers,
    header,
    body: Buffer.from(body, 'latin1').toString('utf8'),
  };
}

/**
 * One request over a raw socket, so that nginx gets exactly these bytes: the request line, then
 * `lines` as written (names spelled, ordered and repeated as given, nothing normalised), then
 * `Connection: close`. Resolves when nginx closes the connection.
 */
export async function rawRequest(
  port: number,
  path: string,
  lines: readonly string[],
  method = 'GET',
): Promise<RawReply> {
  const head = [`${method} ${path} HTTP/1.1`, ...lines, 'Connection: close'].join('\r\n');
  return parseRawReply(await raw(port, `${head}\r\n\r\n`, 10_000));
}

/**
 * A stand-in for oauth2-proxy (run with --reverse-proxy --set-xauthrequest): `/oauth2/auth`
 * answers 202 with `X-Auth-Request-User` for a known session cookie and 401 for anything else,
 * whatever other headers the request carries; `/oauth2/sign_in` is its sign-in page. A session
 * whose user is '' answers 202 without the header (oauth2-proxy without --set-xauthrequest).
 */
export async function startAuthenticator(
  t: HasAfter,
  sessions: Record<string, string>,
): Promise<{ port: number; calls: string[] }> {
  const calls: string[] = [];
  const server = createHttpServer((req, res) => {
    calls.push(req.url ?? '');
    if (req.url?.startsWith('/oauth2/sign_in')) {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      return res.end('<h1>Sign in with your university account</h1>');
    }
    const cookie = /(?:^|; )_oauth2_proxy=([^;]+)/.exec(req.headers.cookie ?? '')?.[1];
    const user = cookie !== undefined && Object.hasOwn(sessions, cookie) ? sessions[cookie] : undefined;
    if (req.url === '/oauth2/auth' && user !== undefined) {
      res.writeHead(202, user === '' ? {} : { 'X-Auth-Request-User': user });
      return res.end();
    }
    res.writeHead(401);
    res.end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => new Promise((r) => server.close(r)));
  return { port: (server.address() as AddressInfo).port, calls };
}

/** Opens a websocket through nginx; resolves with the hub's answer to each message sent. */
export function wsMessages(url: string, headers: Record<string, string>, send: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, handshakeTimeout: 5000 });
    const got: string[] = [];
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`websocket: only got ${JSON.stringify(got)}`));
    }, 5000);
    ws.on('open', () => {
      for (const m of send) ws.send(m);
    });
    ws.on('message', (d) => {
      got.push((d as Buffer).toString());
      if (got.length === send.length) {
        clearTimeout(timer);
        ws.close();
        resolve(got);
      }
    });
    ws.on('unexpected-response', (req, res) => {
      clearTimeout(timer);
      req.destroy();
      reject(new Error(`websocket upgrade refused: ${res.statusCode}`));
    });
    ws.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
