/**
 * Real MariaDB for tests: a throwaway server started from Debian's mariadb-server binaries.
 * mariadb-install-db into a temporary directory, mariadbd on a free TCP port on 127.0.0.1
 * with its Unix socket in the same directory, a user `sharder` with a generated password,
 * everything removed afterwards. Each test gets a database of its own. With
 * SHARDER_TEST_MARIADB_URL (a user allowed to CREATE DATABASE), tests use that server.
 *
 * When neither is possible, MARIADB_SKIP is the declared skip reason (a failure when
 * SHARDER_TEST_REQUIRE names mariadb).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { needs } from './env.js';
import { freePort } from './http.js';
import { until } from './wait.js';
import type { HasAfter } from './context.js';

const EXTERNAL_URL = process.env.SHARDER_TEST_MARIADB_URL;
const MARIADBD = ['/usr/sbin/mariadbd', '/usr/sbin/mysqld'].find((p) => existsSync(p));
const INSTALL_DB = ['/usr/bin/mariadb-install-db', '/usr/bin/mysql_install_db'].find((p) => existsSync(p));
const AS_ROOT = process.getuid?.() === 0;
/** Who administers the throwaway server: the OS user, through the socket (unix_socket authentication). */
const ADMIN = AS_ROOT ? 'root' : userInfo().username;

function localMissing(): string | undefined {
  if (MARIADBD === undefined || INSTALL_DB === undefined)
    return (
      'no MariaDB server binaries (/usr/sbin/mariadbd, mariadb-install-db): apt-get install mariadb-server, or ' +
      'set SHARDER_TEST_MARIADB_URL'
    );
  return undefined;
}

/** Skip reason for suites that need MariaDB, or undefined. */
export const MARIADB_SKIP = needs('mariadb', EXTERNAL_URL ? undefined : localMissing());
/** Skip reason for tests that stop and start the server themselves. */
export const MARIADB_LOCAL_SKIP = needs('mariadb', localMissing());

export interface MariadbServer {
  /** A URL (user and password) for a database on this server, over TCP. */
  url(database: string): string;
  readonly port: number;
  readonly password: string;
  /** Runs SQL as the administrator (no database selected). */
  admin(sql: string, values?: unknown[]): Promise<unknown>;
  /** Stops (SIGTERM, waiting for the process) and starts the server again on the same port; local servers only. */
  stop(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

const dirs = new Set<string>();
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Starts a throwaway server; the caller must destroy it (or use ownMariadb). */
export async function startLocalMariadb(opts: { durable?: boolean } = {}): Promise<MariadbServer> {
  if (MARIADBD === undefined || INSTALL_DB === undefined) throw new Error('no MariaDB binaries');
  const dir = mkdtempSync(join(tmpdir(), 'sharder-mariadb-'));
  dirs.add(dir);
  const data = join(dir, 'data');
  const socket = join(dir, 'mysqld.sock');
  // As root, the server runs as root too (--user=root): the files are in our own temp dir.
  const user = AS_ROOT ? ['--user=root'] : [];
  execFileSync(
    INSTALL_DB,
    ['--no-defaults', `--datadir=${data}`, '--auth-root-authentication-method=socket', '--skip-test-db', ...user],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const password = randomBytes(18).toString('base64url');
  let port = await freePort();
  let child: ChildProcess | undefined;
  const start = async (): Promise<void> => {
    const c = spawn(
      MARIADBD,
      [
        '--no-defaults',
        `--datadir=${data}`,
        `--socket=${socket}`,
        `--port=${port}`,
        '--bind-address=127.0.0.1',
        `--pid-file=${join(dir, 'mysqld.pid')}`,
        `--log-error=${join(dir, 'error.log')}`,
        '--skip-name-resolve',
        // Throwaway: no fsync at commit (unless durable, for benchmarks), small buffers.
        `--innodb-flush-log-at-trx-commit=${opts.durable ? 1 : 2}`,
        '--innodb-buffer-pool-size=128M',
        '--innodb-log-file-size=48M',
        '--max-connections=300',
        '--character-set-server=utf8mb4',
        ...user,
      ],
      { stdio: 'ignore' },
    );
    children.add(c);
    c.on('exit', () => children.delete(c));
    child = c;
    try {
      await until(
        async () => {
          if (c.exitCode !== null)
            throw new Error(`mariadbd exited (${c.exitCode}):\n${safeRead(join(dir, 'error.log')).slice(-2000)}`);
          try {
            const s = await mysql.createConnection({ socketPath: socket, user: ADMIN });
            await s.end();
            return true;
          } catch {
            return false;
          }
        },
        60_000,
        'mariadbd accepts connections',
        50,
      );
    } catch (err) {
      c.kill('SIGKILL');
      throw err;
    }
  };
  for (let attempt = 0; ; attempt++) {
    try {
      await start();
      break;
    } catch (err) {
      // Another process took the port between our probe and the server's bind: try another.
      if (attempt === 4) throw err;
      port = await freePort();
    }
  }
  const asRoot = async (sql: string, values?: unknown[]): Promise<unknown> => {
    const c = await mysql.createConnection({ socketPath: socket, user: ADMIN, multipleStatements: true });
    try {
      return (await c.query(sql, values))[0];
    } finally {
      await c.end();
    }
  };
  await asRoot(
    `CREATE USER 'sharder'@'127.0.0.1' IDENTIFIED BY '${password}'; GRANT ALL ON *.* TO 'sharder'@'127.0.0.1'`,
  );
  const stop = async (): Promise<void> => {
    const c = child;
    if (c === undefined || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGTERM');
    });
  };
  return {
    url: (db) => `mysql://sharder:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(db)}`,
    port,
    password,
    admin: asRoot,
    stop,
    start,
    async destroy() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
      dirs.delete(dir);
    },
  };
}

function externalServer(href: string): MariadbServer {
  const u = new URL(href);
  const url = (db: string): string => {
    const x = new URL(u.href);
    x.pathname = `/${encodeURIComponent(db)}`;
    return x.href;
  };
  return {
    url,
    port: Number(u.port || 3306),
    password: decodeURIComponent(u.password),
    async admin(sql, values) {
      const c = await mysql.createConnection({
        host: u.hostname,
        port: Number(u.port || 3306),
        user: decodeURIComponent(u.username),
        password: decodeURIComponent(u.password),
      });
      try {
        return (await c.query(sql, values))[0];
      } finally {
        await c.end();
      }
    },
    stop: () => Promise.reject(new Error('cannot stop an external MariaDB server')),
    start: () => Promise.reject(new Error('cannot start an external MariaDB server')),
    destroy: () => Promise.resolve(),
  };
}

function safeRead(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

let shared: Promise<MariadbServer> | undefined;

/** The server this test file uses: SHARDER_TEST_MARIADB_URL's, or one started on first use. */
export function sharedMariadb(): Promise<MariadbServer> {
  shared ??= EXTERNAL_URL ? Promise.resolve(externalServer(EXTERNAL_URL)) : startLocalMariadb();
  return shared;
}

/** Stops the shared server if this file started one; call it from a top-level after(). */
export async function stopSharedMariadb(): Promise<void> {
  const s = shared;
  shared = undefined;
  if (s) await (await s).destroy();
}

/** A throwaway server of the test's own (for tests that stop it). */
export async function ownMariadb(t: HasAfter): Promise<MariadbServer> {
  const s = await startLocalMariadb();
  t.after(() => s.destroy());
  return s;
}

let counter = 0;

/** A new, empty database on `server` (default: the shared one), dropped when `t` ends. */
export async function freshMariadb(
  t: HasAfter,
  server?: MariadbServer,
): Promise<{ url: string; name: string; server: MariadbServer }> {
  const s = server ?? (await sharedMariadb());
  const name = `sharder_test_${process.pid}_${++counter}_${randomBytes(3).toString('hex')}`;
  await s.admin(`CREATE DATABASE \`${name}\``);
  t.after(async () => {
    await s.admin(`DROP DATABASE IF EXISTS \`${name}\``).catch(() => undefined);
  });
  return { url: s.url(name), name, server: s };
}
