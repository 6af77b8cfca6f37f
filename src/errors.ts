/**
 * Errors with stable codes, in the manner of undici's lib/core/errors.js: callers and tests
 * branch on `code`, never on message text. Every error the sharder raises on purpose is a
 * ShardError; anything else reaching a handler is a bug and is reported as such.
 */
export class ShardError extends Error {
  readonly code: string = 'SHARD_ERR';
  /** HTTP status a handler maps this error to. */
  readonly status: number = 500;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export interface ConfigProblem {
  /** Where the value came from: a file path, or `environment`. */
  source: string;
  /** Dotted key path, e.g. `kinds.hub.buckets[1].name`, or the environment variable's name. */
  key: string;
  message: string;
}

export class ConfigError extends ShardError {
  override readonly code = 'SHARD_ERR_CONFIG';
  readonly problems: readonly ConfigProblem[];
  constructor(problems: ConfigProblem[], options?: { cause?: unknown }) {
    super(problems.map(formatProblem).join('\n'), options);
    this.problems = problems;
  }
}

export function formatProblem(p: ConfigProblem): string {
  return `${p.source}: ${p.key}: ${p.message}`;
}

/** The store cannot be reached or did not answer in time. */
export class StoreUnavailableError extends ShardError {
  override readonly code = 'SHARD_ERR_STORE_UNAVAILABLE';
  override readonly status = 503;
  constructor(message = 'the assignment store is unavailable', options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A kind has no active bucket to put a new object in. */
export class NoBucketError extends ShardError {
  override readonly code = 'SHARD_ERR_NO_BUCKET';
  override readonly status = 503;
  constructor(kind: string) {
    super(`kind "${kind}" has no active bucket to assign new objects to: add a bucket or set one back to active`);
  }
}

/** An object is assigned to a bucket that the configuration no longer lists. */
export class UnknownBucketError extends ShardError {
  override readonly code = 'SHARD_ERR_UNKNOWN_BUCKET';
  override readonly status = 503;
  constructor(kind: string, bucket: string) {
    super(`an object of kind "${kind}" is assigned to bucket "${bucket}", which is not in the configuration: put the bucket back or migrate its objects`);
  }
}

export class UnknownKindError extends ShardError {
  override readonly code = 'SHARD_ERR_UNKNOWN_KIND';
  override readonly status = 400;
  constructor(kind: string) {
    super(`unknown kind "${kind}"`);
  }
}

/** A request or command named something malformed (identity, kind, argument). */
export class BadInputError extends ShardError {
  override readonly code = 'SHARD_ERR_BAD_INPUT';
  override readonly status = 400;
}

/** The store holds data written by a newer sharder than this one. */
export class SchemaTooNewError extends ShardError {
  override readonly code = 'SHARD_ERR_SCHEMA_TOO_NEW';
  constructor(found: number, known: number) {
    super(`the database schema is at version ${found}, but this sharder knows only up to ${known}: upgrade the sharder`);
  }
}

/** A backup could not be written (the live database is never touched by a failed backup). */
export class BackupError extends ShardError {
  override readonly code = 'SHARD_ERR_BACKUP';
}

/** `sharder backup` of a database it cannot copy itself (PostgreSQL: pg_dump does it). */
export class BackupUnsupportedError extends ShardError {
  override readonly code = 'SHARD_ERR_BACKUP_UNSUPPORTED';
  override readonly status = 400;
}

/**
 * A command run as root on a database file that belongs to the service's user: SQLite would
 * create its -wal and -shm files owned by root, which the service could then not open.
 */
export class WrongUserError extends ShardError {
  override readonly code = 'SHARD_ERR_WRONG_USER';
  override readonly status = 400;
}
