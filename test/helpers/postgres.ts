/**
 * Real PostgreSQL for tests. With SHARDER_TEST_DATABASE_URL (a role allowed to CREATE
 * DATABASE), tests use that server; otherwise they start a throwaway server from the binaries
 * under /usr/lib/postgresql/<version>/bin: initdb into a temporary directory (owned by the
 * `postgres` user when the tests run as root, since the server refuses to run as root), a free
 * TCP port on 127.0.0.1 with a generated password (scram-sha-256), the Unix socket in the same
 * directory, everything removed afterwards. Each test gets a database of its own.
 *
 * When neither is possible, PG_SKIP is the declared skip reason (a failure when
 * SHARDER_TEST_REQUIRE names postgres).
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
  appendFileSync,
  readFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import pg from 'pg';
import { needs } from './env.js';
import { freePort } from './http.js';
import { childrenOf } from './proc.js';
import { until } from './wait.js';
import type { HasAfter } from './context.js';

const EXTERNAL_URL = process.env.SHARDER_TEST_DATABASE_URL;

/** The newest installed PostgreSQL's bin directory, or undefined. */
function findBinDir(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base)
    .filter((v) => existsSync(join(base, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(base, versions[0], 'bin');
}

const BIN = findBinDir();
const AS_ROOT = process.getuid?.() === 0;

function localMissing(): string | undefined {
  if (BIN === undefined)
    return (
      'no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (install postgresql, or set ' +
      'SHARDER_TEST_DATABASE_URL)'
    );
  if (AS_ROOT && spawnSync('id', ['-u', 'postgres']).status !== 0)
    return 'tests run as root and there is no "postgres" user to run the server as';
  return undefined;
}

/** Skip reason for suites that need any PostgreSQL, or undefined. */
export const PG_SKIP = needs('postgres', EXTERNAL_URL ? undefined : localMissing());
/** Skip reason for tests that must stop and start the server themselves (outage, TLS). */
export const PG_LOCAL_SKIP = needs('postgres', localMissing());

export interface PgServer {
  /** A URL (with user and password) for a database on this server, over TCP. */
  url(database: string): string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** Runs SQL as the administrator on the maintenance database. */
  admin<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  /** Stops (fast shutdown: sessions are terminated) and starts the server; local servers only. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Files of a local server (its TLS certificate, when started with tls). */
  readonly dir: string | null;
}

function asPostgres(cmd: string, args: string[]): [string, string[]] {
  return AS_ROOT ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
}

function sh(cmd: string, args: string[]): string {
  const [file, argv] = asPostgres(cmd, args);
  return execFileSync(file, argv, { cwd: '/', stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
}

/** Like sh, without blocking the event loop (servers and clients keep running meanwhile). */
async function shAsync(cmd: string, args: string[]): Promise<void> {
  const [file, argv] = asPostgres(cmd, args);
  await promisify(execFile)(file, argv, { cwd: '/' });
}

/** Data directories of servers running now, and the temporary directories to remove. */
const running = new Set<string>();
const dirs = new Set<string>();
process.on('exit', () => {
  // Last resort (a test failed before its teardown, or the shared server of this file).
  for (const data of running)
    spawnSync(
      AS_ROOT ? 'runuser' : join(BIN!, 'pg_ctl'),
      AS_ROOT
        ? ['-u', 'postgres', '--', join(BIN!, 'pg_ctl'), '-D', data, '-m', 'immediate', 'stop']
        : ['-D', data, '-m', 'immediate', 'stop'],
    );
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

export interface LocalOptions {
  /** fsync on (for benchmarks); tests run with fsync off. */
  durable?: boolean;
  /**
   * A primary that streams to standbys (startStandby): WAL for replication, and commits that
   * wait for a synchronous standby when synchronous_standby_names is set (synchronous_commit
   * stays on; fsync may still be off, a killed process loses nothing the OS has).
   */
  replication?: boolean;
  /** Serve TLS with a generated self-signed certificate for `tlsName` (cert at dir/server.crt). */
  tls?: { name: string };
}

/** Starts a throwaway server; the caller must call `destroy` (or use ownPostgres). */
export async function startLocalPostgres(opts: LocalOptions = {}): Promise<LocalServer> {
  if (BIN === undefined) throw new Error('no PostgreSQL binaries');
  const dir = mkdtempSync(join(tmpdir(), 'sharder-pg-'));
  dirs.add(dir);
  const data = join(dir, 'data');
  const password = randomBytes(18).toString('base64url');
  writeFileSync(join(dir, 'pwfile'), `${password}\n`);
  if (AS_ROOT) {
    const { uid, gid } = {
      uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })),
      gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })),
    };
    chownSync(dir, uid, gid);
    chownSync(join(dir, 'pwfile'), uid, gid);
  }
  chmodSync(dir, 0o700);
  const pgctl = join(BIN, 'pg_ctl');
  sh(join(BIN, 'initdb'), [
    '-D',
    data,
    '-U',
    'postgres',
    '--pwfile',
    join(dir, 'pwfile'),
    '--auth-local=trust',
    '--auth-host=scram-sha-256',
    '-E',
    'UTF8',
    '--locale=C',
    '--no-sync',
    '--no-instructions',
  ]);
  rmSync(join(dir, 'pwfile'));
  const conf = [
    "listen_addresses = '127.0.0.1'",
    `unix_socket_directories = '${dir}'`,
    'max_connections = 200',
    ...(opts.durable
      ? []
      : ['fsync = off', ...(opts.replication ? [] : ['synchronous_commit = off']), 'full_page_writes = off']),
    ...(opts.replication ? ['wal_level = replica', 'max_wal_senders = 5', "wal_keep_size = '256MB'"] : []),
    "log_min_messages = 'warning'",
  ];
  if (opts.tls) {
    const subj = `/CN=${opts.tls.name}`;
    sh('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '2',
      '-subj',
      subj,
      '-addext',
      `subjectAltName=DNS:${opts.tls.name}`,
      '-keyout',
      join(dir, 'server.key'),
      '-out',
      join(dir, 'server.crt'),
    ]);
    chmodSync(join(dir, 'server.key'), 0o600);
    conf.push(
      'ssl = on',
      `ssl_cert_file = '${join(dir, 'server.crt')}'`,
      `ssl_key_file = '${join(dir, 'server.key')}'`,
    );
  }
  appendFileSync(join(data, 'postgresql.conf'), `\n${conf.join('\n')}\n`);
  let port = 0;
  const start = (): void => {
    sh(pgctl, ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', '-o', `-p ${port}`, 'start']);
    running.add(data);
  };
  let started = false;
  for (let attempt = 0; attempt < 5 && !started; attempt++) {
    port = await freePort();
    try {
      start();
      started = true;
    } catch (err) {
      // Another process took the port between our probe and the server's bind: try another.
      if (attempt === 4)
        throw new Error(`cannot start PostgreSQL: ${(err as Error).message}\n${safeRead(join(dir, 'server.log'))}`, {
          cause: err,
        });
    }
  }
  return local(dir, port, password);
}

/** A local server of ours, in `dir` (data in dir/data), listening on `port`. */
export interface LocalServer extends PgServer {
  /** The server's processes SIGKILLed at once: a crash (no shutdown, no goodbye to standbys). */
  kill(): void;
  /** A standby made primary (pg_ctl promote), waiting until it accepts writes. */
  promote(): Promise<void>;
  destroy(): void;
}

function local(dir: string, port: number, password: string): LocalServer {
  const pgctl = join(BIN!, 'pg_ctl');
  const data = join(dir, 'data');
  const server = makeServer({ host: '127.0.0.1', port, user: 'postgres', password, dir, maintenance: 'postgres' });
  return {
    ...server,
    async stop() {
      await shAsync(pgctl, ['-D', data, '-m', 'fast', '-w', 'stop']);
      running.delete(data);
    },
    async start() {
      await shAsync(pgctl, ['-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', '-o', `-p ${port}`, 'start']);
      running.add(data);
    },
    kill() {
      const postmaster = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      // The postmaster and its children (backends, WAL writer and senders), all at once.
      const pids = [postmaster, ...childrenOf(postmaster)];
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      running.delete(data);
    },
    async promote() {
      await shAsync(pgctl, ['-D', data, '-w', '-t', '60', 'promote']);
    },
    destroy: () => {
      try {
        if (running.has(data)) {
          sh(pgctl, ['-D', data, '-m', 'immediate', '-w', 'stop']);
          running.delete(data);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
        dirs.delete(dir);
      }
    },
  };
}

/**
 * A streaming standby of `primary` (a local server started with `replication`): a base backup
 * taken with pg_basebackup -R (which writes primary_conninfo and standby.signal), started on
 * a port of its own. With `synchronous`, the primary is told to wait for it at every commit
 * (synchronous_standby_names), and this resolves once it is the synchronous standby; otherwise
 * once it streams.
 */
export async function startStandby(
  t: HasAfter,
  primary: PgServer,
  opts: { synchronous: boolean },
): Promise<LocalServer> {
  if (BIN === undefined || primary.dir === null) throw new Error('a standby needs a local primary');
  const dir = mkdtempSync(join(tmpdir(), 'sharder-pg-standby-'));
  dirs.add(dir);
  if (AS_ROOT)
    chownSync(
      dir,
      Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })),
      Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })),
    );
  chmodSync(dir, 0o700);
  const data = join(dir, 'data');
  const name = 'sharder_standby';
  await shAsync(join(BIN, 'pg_basebackup'), [
    '-D',
    data,
    '-h',
    primary.dir,
    '-p',
    String(primary.port),
    '-U',
    'postgres',
    '-R',
    '-X',
    'stream',
    '-c',
    'fast',
    '--no-sync',
  ]);
  appendFileSync(
    join(data, 'postgresql.auto.conf'),
    [
      '',
      `primary_conninfo = 'host=${primary.dir} port=${primary.port} user=postgres application_name=${name}'`,
      `unix_socket_directories = '${dir}'`,
      '',
    ].join('\n'),
  );
  const port = await freePort();
  const s = local(dir, port, primary.password);
  t.after(() => s.destroy());
  await s.start();
  if (opts.synchronous) {
    await primary.admin(`ALTER SYSTEM SET synchronous_standby_names = '${name}'`);
    await primary.admin('SELECT pg_reload_conf()');
  }
  const want = opts.synchronous ? 'sync' : 'async';
  await until(
    async () => {
      const { rows } = await primary.admin<{ state: string; sync_state: string }>(
        'SELECT state, sync_state FROM pg_stat_replication WHERE application_name = $1',
        [name],
      );
      return rows[0]?.state === 'streaming' && rows[0].sync_state === want;
    },
    30_000,
    `the standby streams as ${want}`,
    50,
  );
  return s;
}

function safeRead(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function makeServer(o: {
  host: string;
  port: number;
  user: string;
  password: string;
  dir: string | null;
  maintenance: string;
  external?: URL;
}): PgServer {
  const url = (database: string): string => {
    if (o.external) {
      const u = new URL(o.external.href);
      u.pathname = `/${encodeURIComponent(database)}`;
      return u.href;
    }
    return `postgres://${encodeURIComponent(o.user)}:${encodeURIComponent(o.password)}@${o.host}:${o.port}/${encodeURIComponent(database)}`;
  };
  return {
    url,
    host: o.host,
    port: o.port,
    user: o.user,
    password: o.password,
    dir: o.dir,
    async admin(sql, values) {
      const c = new pg.Client({ connectionString: url(o.maintenance) });
      c.on('error', () => undefined);
      await c.connect();
      try {
        return await c.query(sql, values);
      } finally {
        await c.end();
      }
    },
    stop() {
      return Promise.reject(new Error('cannot stop an external PostgreSQL server'));
    },
    start() {
      return Promise.reject(new Error('cannot start an external PostgreSQL server'));
    },
  };
}

let shared: Promise<PgServer> | undefined;

/** The server this test file uses: SHARDER_TEST_DATABASE_URL's, or one started on first use. */
export function sharedPostgres(): Promise<PgServer> {
  if (shared === undefined) {
    if (EXTERNAL_URL) {
      const u = new URL(EXTERNAL_URL);
      shared = Promise.resolve(
        makeServer({
          host: u.hostname,
          port: Number(u.port || 5432),
          user: decodeURIComponent(u.username),
          password: decodeURIComponent(u.password),
          dir: null,
          maintenance: decodeURIComponent(u.pathname.slice(1)) || 'postgres',
          external: u,
        }),
      );
    } else {
      shared = startLocalPostgres();
    }
  }
  return shared;
}

/** Stops the shared server if this file started one; call it from a top-level after(). */
export async function stopSharedPostgres(): Promise<void> {
  const s = shared;
  shared = undefined;
  if (s && !EXTERNAL_URL) ((await s) as PgServer & { destroy(): void }).destroy();
}

/** A throwaway server of the test's own (for tests that stop it, or need TLS). */
export async function ownPostgres(t: HasAfter, opts: LocalOptions = {}): Promise<LocalServer> {
  const s = await startLocalPostgres(opts);
  t.after(() => s.destroy());
  return s;
}

let counter = 0;

/** A new, empty database on `server` (default: the shared one), dropped when `t` ends. */
export async function freshDatabase(
  t: HasAfter,
  server?: PgServer,
): Promise<{ url: string; name: string; server: PgServer }> {
  const s = server ?? (await sharedPostgres());
  const name = `sharder_test_${process.pid}_${++counter}_${randomBytes(3).toString('hex')}`;
  await s.admin(`CREATE DATABASE "${name}" ENCODING 'UTF8' TEMPLATE template0`);
  t.after(async () => {
    await s.admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(() => undefined);
  });
  return { url: s.url(name), name, server: s };
}

/** A plain pg client on a URL, ended when `t` ends. */
export async function sqlClient(t: HasAfter, url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined);
  await c.connect();
  t.after(() => c.end().catch(() => undefined));
  return c;
}

/** The kept bucket counts equal COUNT(*) per bucket, and no object is stored twice. */
export async function assertCountsEqualRows(sql: pg.Client, kind = 'hub'): Promise<void> {
  const kept = (
    await sql.query<{ bucket: string; count: string }>(
      'SELECT bucket, count FROM bucket_counts WHERE kind = $1 AND count <> 0 ORDER BY bucket',
      [kind],
    )
  ).rows.map((r) => [r.bucket, Number(r.count)]);
  const real = (
    await sql.query<{ bucket: string; count: string }>(
      'SELECT bucket, count(*) AS count FROM assignments WHERE kind = $1 GROUP BY bucket ORDER BY bucket',
      [kind],
    )
  ).rows.map((r) => [r.bucket, Number(r.count)]);
  assert.deepEqual(kept, real, 'bucket_counts equal COUNT(*) per bucket');
  assert.equal(
    (await sql.query('SELECT 1 FROM assignments GROUP BY kind, name HAVING count(*) > 1')).rowCount,
    0,
    'no object stored twice',
  );
}
