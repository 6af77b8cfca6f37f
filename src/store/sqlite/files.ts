/**
 * The database file of the SQLite backend (and of the PostgreSQL snapshot): created private,
 * watched for replacement.
 */
import { chmodSync, closeSync, fchmodSync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

/** Mode of a database file the sharder creates: it holds every user name. */
export const DATABASE_FILE_MODE = 0o600;
/** Mode of the folders the sharder creates for it. */
export const DATABASE_DIR_MODE = 0o700;

/**
 * Creates the database's folder (0700) and the empty database file (0600) when they do not
 * exist, whatever the umask: SQLite itself would create the file 0644 (less the umask), and
 * it gives -wal and -shm the mode of the database file, so they end up 0600 too. An existing
 * file keeps its mode (an operator may have chosen 0640 and a group).
 */
export function createPrivately(location: string): void {
  const dir = dirname(location);
  const first = mkdirSync(dir, { recursive: true, mode: DATABASE_DIR_MODE });
  if (first !== undefined) {
    for (let d = dir; ; d = dirname(d)) {
      chmodSync(d, DATABASE_DIR_MODE);
      if (d === first || d === dirname(d)) break;
    }
  }
  let fd: number;
  try {
    fd = openSync(location, 'wx', DATABASE_FILE_MODE);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw err;
  }
  try {
    fchmodSync(fd, DATABASE_FILE_MODE);
  } finally {
    closeSync(fd);
  }
}

/** Device and inode, or null when the file is gone. */
export function fileIdentity(path: string): string | null {
  try {
    const st = statSync(path);
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
}
