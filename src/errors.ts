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
    super(
      `an object of kind "${kind}" is assigned to bucket "${bucket}", which is not in the configuration: put ` +
        'the bucket back or migrate its objects',
    );
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

/** A command line the CLI cannot run (unknown flag, missing argument): exit 2 with a usage hint. */
export class UsageError extends ShardError {
  override readonly code = 'SHARD_ERR_USAGE';
  override readonly status = 400;
}

/** The store holds data written by a newer sharder than this one. */
export class SchemaTooNewError extends ShardError {
  override readonly code = 'SHARD_ERR_SCHEMA_TOO_NEW';
  constructor(found: number, known: number) {
    super(
      `the database schema is at version ${found}, but this sharder knows only up to ${known}: upgrade the sharder`,
    );
  }
}

/** A file the command was asked to write could not be written. */
export class OutputError extends ShardError {
  override readonly code = 'SHARD_ERR_OUTPUT';
}

/** Proxy mode: the user's hub refused or dropped the connection, or answered garbage. */
export class UpstreamDownError extends ShardError {
  override readonly code = 'SHARD_ERR_UPSTREAM_DOWN';
  override readonly status = 502;
  constructor(
    readonly bucket: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`hub "${bucket}" is not answering (${reason}); try again in a few minutes`, options);
  }
}

/** Proxy mode: the user's hub did not accept the connection, or went silent, in time. */
export class UpstreamTimeoutError extends ShardError {
  override readonly code = 'SHARD_ERR_UPSTREAM_TIMEOUT';
  override readonly status = 504;
  constructor(
    readonly bucket: string,
    readonly phase: 'connect' | 'idle',
    ms: number,
  ) {
    super(
      phase === 'connect'
        ? `hub "${bucket}" did not accept a connection within ${ms / 1000} s; try again in a few minutes`
        : `hub "${bucket}" sent nothing for ${ms / 1000} s; try again in a few minutes`,
    );
  }
}

/** Proxy mode: the user's bucket has no `upstream` to forward to. */
export class NoUpstreamError extends ShardError {
  override readonly code = 'SHARD_ERR_NO_UPSTREAM';
  override readonly status = 503;
  constructor(
    readonly kind: string,
    readonly bucket: string,
  ) {
    super(`hub "${bucket}" has no upstream address configured: set its upstream under kinds.${kind}.buckets`);
  }
}

/** The object, bucket or record an operation names does not exist. */
export class NotFoundError extends ShardError {
  override readonly code = 'SHARD_ERR_NOT_FOUND';
  override readonly status = 404;
}

/** A bucket named by an operation is not in the configuration of the kind. */
export class NoSuchBucketError extends ShardError {
  override readonly code = 'SHARD_ERR_NO_SUCH_BUCKET';
  override readonly status = 400;
  constructor(kind: string, bucket: string, known: readonly string[]) {
    super(
      `bucket "${bucket}" is not in the configuration of kind "${kind}" (configured: ` +
        `${known.join(', ') || 'none'}): add it to sharder.yml first`,
    );
  }
}

/**
 * The object's assignment changed between reading and writing it (another operator, another
 * process): nothing was written; read it again and retry.
 */
export class ConflictError extends ShardError {
  override readonly code = 'SHARD_ERR_CONFLICT';
  override readonly status = 409;
}

/** A migration was asked of a bucket that still receives new objects. */
export class BucketActiveError extends ShardError {
  override readonly code = 'SHARD_ERR_BUCKET_ACTIVE';
  override readonly status = 409;
}

/** The object's old hub reports a running server: moving it now would let two hubs manage it. */
export class ServerRunningError extends ShardError {
  override readonly code = 'SHARD_ERR_SERVER_RUNNING';
  override readonly status = 409;
}

/** A JupyterHub REST API did not answer as expected (unreachable, refused the token, 5xx). */
export class HubApiError extends ShardError {
  override readonly code = 'SHARD_ERR_HUB_API';
  override readonly status = 502;
}

/** The admin API request carries no valid token. */
export class UnauthorizedError extends ShardError {
  override readonly code = 'SHARD_ERR_UNAUTHORIZED';
  override readonly status = 401;
}

export interface InputProblem {
  /** Where in the input: `line 3`, or `row id 17` for a database. */
  at: string;
  message: string;
}

/** An import's input has malformed or unusable rows; nothing was imported. */
export class ImportFormatError extends ShardError {
  override readonly code = 'SHARD_ERR_IMPORT_FORMAT';
  override readonly status = 400;
  readonly problems: readonly InputProblem[];
  constructor(source: string, problems: InputProblem[], more: number) {
    const n = problems.length + more;
    const list = problems.map((p) => `  ${p.at}: ${p.message}`).join('\n');
    const rest = more > 0 ? `\n  … and ${more} more` : '';
    super(`${source}: ${n} bad row${n === 1 ? '' : 's'}, nothing imported:\n${list}${rest}`);
    this.problems = problems;
  }
}

/** The database an import reads from (the original sharder's) cannot be opened or read. */
export class SourceUnavailableError extends ShardError {
  override readonly code = 'SHARD_ERR_SOURCE_UNAVAILABLE';
  override readonly status = 502;
}

/**
 * What import-original was pointed at is not the original sharder's database: not a database
 * at all (or a damaged one), or one without its `shard` table. Nothing was imported.
 */
export class NotOriginalError extends ShardError {
  override readonly code = 'SHARD_ERR_NOT_ORIGINAL';
  override readonly status = 400;
}

/** A request body larger than the route accepts. */
export class PayloadTooLargeError extends ShardError {
  override readonly code = 'SHARD_ERR_PAYLOAD_TOO_LARGE';
  override readonly status = 413;
}

/** A request body of a media type the route does not read. */
export class UnsupportedMediaTypeError extends ShardError {
  override readonly code = 'SHARD_ERR_UNSUPPORTED_MEDIA_TYPE';
  override readonly status = 415;
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

/** With workers: N, the cluster primary could not gather the workers' metrics or status. */
export class ClusterGatherError extends ShardError {
  override readonly code = 'SHARD_ERR_CLUSTER_GATHER';
  override readonly status = 503;
}
