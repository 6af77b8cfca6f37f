/**
 * Online backup of the SQLite database with SQLite's backup API, while servers keep writing.
 *
 * The source is opened read-only and without migrations (a backup taken with a newer sharder
 * before an upgrade must not upgrade the live schema under the running old one). The copy is
 * made in one backup step: one read transaction, so the file is a consistent snapshot that holds
 * every assignment committed before the step began, and in WAL mode writers are not blocked
 * meanwhile (a copy in many small steps would restart each time another process commits, and
 * might never finish under load). The copy is written to a temporary file beside the target
 * (mode 0600: it holds every user name), switched to a single self-contained file
 * (journal_mode=DELETE), checked (quick_check), synced, and only then renamed to the target.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { BackupError, BadInputError, ShardError, StoreUnavailableError, WrongUserError } from '../../errors.js';
import Database from 'better-sqlite3';

/** Pages per backup step: all of them, so that the copy is one snapshot (see above). */
const ALL_PAGES = 0x7fffffff;

export interface SqliteBackupOptions {
  /** The live database file. */
  source: string;
  /** The backup file to write. */
  target: string;
  /** Replace `target` if it exists. */
  force: boolean;
  /** How long to wait for another process's lock. */
  busyTimeoutMs: number;
}

export interface SqliteBackupReport {
  source: string;
  target: string;
  bytes: number;
  assignments: number;
  schemaVersion: number;
  ms: number;
}

/** Refuses root on a file owned by someone else (the service user): see WrongUserError. */
export function assertDatabaseOwner(path: string): void {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return;
  const owner = statSync(path).uid;
  if (owner === 0) return;
  const name = userName(owner);
  throw new WrongUserError(
    `${path} belongs to ${name}, not root: run this command as that user (sudo -u ${name} sharder ...); ` +
      'run as root, SQLite would leave root-owned -wal/-shm files that the service cannot open',
  );
}

/** The user name of a uid from /etc/passwd (Node.js has no getpwuid), or the number. */
function userName(uid: number): string {
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const [user, , id] = line.split(':');
      if (user && Number(id) === uid) return user;
    }
  } catch {
    // No readable /etc/passwd: the number will do.
  }
  return String(uid);
}

function syncFile(path: string): void {
  const fd = openSync(path, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function syncDir(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function sqliteCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('SQLITE_') ? code : undefined;
}

export async function backupSqlite(opts: SqliteBackupOptions): Promise<SqliteBackupReport> {
  const started = performance.now();
  const source = resolve(opts.source);
  const target = resolve(opts.target);
  if (!existsSync(source)) {
    throw new BackupError(
      `there is no SQLite database at ${source}: nothing to back up (check "database" in the configuration)`,
    );
  }
  if (target === source) throw new BadInputError('the backup file must not be the database itself');
  const dir = dirname(target);
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new BadInputError(`the folder ${dir} does not exist: create it first`);
  if (existsSync(target) && !opts.force)
    throw new BadInputError(`${target} exists: choose a new file name, or pass --force to replace it`);
  assertDatabaseOwner(source);

  const partial = join(dir, `.${basename(target)}.partial-${process.pid}-${Date.now()}`);
  try {
    // Created empty and private before SQLite writes to it ('wx': never follows an existing file).
    closeSync(openSync(partial, 'wx', 0o600));
    const src = new Database(source, { readonly: true, fileMustExist: true, timeout: opts.busyTimeoutMs });
    try {
      await src.backup(partial, { progress: () => ALL_PAGES });
    } finally {
      src.close();
    }
    const copy = new Database(partial, { fileMustExist: true });
    let assignments = 0;
    let schemaVersion = 0;
    try {
      copy.pragma('journal_mode = DELETE');
      const check = copy.pragma('quick_check', { simple: true });
      if (check !== 'ok')
        throw new BackupError(
          `the copy failed SQLite's quick_check (${String(check)}): the source may be damaged; run "PRAGMA ` +
            'integrity_check" on it',
        );
      const has = (table: string): boolean =>
        copy.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) !== undefined;
      if (has('assignments'))
        assignments = (copy.prepare('SELECT COUNT(*) AS n FROM assignments').get() as { n: number }).n;
      if (has('schema_migrations'))
        schemaVersion = (
          copy.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations').get() as { v: number }
        ).v;
    } finally {
      copy.close();
    }
    syncFile(partial);
    renameSync(partial, target);
    syncDir(dir);
    return {
      source,
      target,
      bytes: statSync(target).size,
      assignments,
      schemaVersion,
      ms: performance.now() - started,
    };
  } catch (err) {
    rmSync(partial, { force: true });
    rmSync(`${partial}-journal`, { force: true });
    if (err instanceof ShardError) throw err;
    const code = sqliteCode(err);
    if (code?.startsWith('SQLITE_BUSY') || code?.startsWith('SQLITE_LOCKED')) {
      throw new StoreUnavailableError(`the database stayed locked for ${opts.busyTimeoutMs} ms (${code}): try again`, {
        cause: err,
      });
    }
    throw new BackupError(`backup of ${source} to ${target} failed: ${(err as Error).message}`, { cause: err });
  }
}
