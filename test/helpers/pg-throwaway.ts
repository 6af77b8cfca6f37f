/**
 * A throwaway PostgreSQL cluster for one test file: initdb into a temporary directory, started
 * with a Unix socket only (no TCP port to collide with anything), removed afterwards. When the
 * server binaries are missing the suite gets a declared skip (a failure when
 * SHARDER_TEST_REQUIRE names postgres).
 */
import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needs } from './env.js';
import type { HasAfter } from './context.js';

function binDir(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(base, versions[0], 'bin');
}

/** Why PostgreSQL cannot be started here, or undefined when it can. */
export function postgresMissing(): string | undefined {
  return binDir() === undefined ? 'no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)' : undefined;
}

export const postgresSkip = (): string | undefined => needs('postgres', postgresMissing());

/** Starts a cluster; returns a connection URL (user postgres, database postgres, over the socket). */
export function startPostgres(t: HasAfter): string {
  const bin = binDir()!;
  const dir = mkdtempSync(join(tmpdir(), 'sharder-pg-'));
  // The server refuses to run as root: run it as the postgres user when we are root.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres']).toString().trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres']).toString().trim());
    chownSync(dir, uid, gid);
  }
  const run = (cmd: string, args: string[]): void => {
    const full = join(bin, cmd);
    if (asRoot) execFileSync('runuser', ['-u', 'postgres', '--', full, ...args], { stdio: 'pipe' });
    else execFileSync(full, args, { stdio: 'pipe' });
  };
  const data = join(dir, 'data');
  t.after(() => {
    try {
      run('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']);
    } catch {
      // already stopped
    }
    rmSync(dir, { recursive: true, force: true });
  });
  run('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync']);
  run('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-w', '-o', `-k ${dir} -c listen_addresses='' -c fsync=off -p 5432`, 'start']);
  return `postgresql://postgres@/postgres?host=${encodeURIComponent(dir)}`;
}
