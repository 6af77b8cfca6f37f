/**
 * A local copy of the assignment table (store.snapshot_file), so that an instance restarted
 * while PostgreSQL is away still answers the users it knew.
 *
 * An SQLite file (created 0600, like the SQLite store's) with the rows and what they are a
 * copy of: the database's location (hosts, port, database, user; never the password), the
 * cluster's system identifier, and the configured kinds. It is fed by the same events the
 * in-memory table applies (core/table.ts), queued and written from a timer in batches of
 * SNAPSHOT_BATCH_ROWS rows per transaction (about 3 ms each: bench/snapshot-write.ts), one per
 * turn of the event loop, never on a request's path:
 *   - a change with its bucket is an upsert, a delete removes the row;
 *   - a completed load of a kind (at start, and every "anything may have changed") rewrites
 *     the kind: its rows are upserted with a new generation number, then the rows of older
 *     generations are deleted, so the file never holds less than a whole table (while the
 *     rewrite runs it holds the old rows as well).
 * At start, when PostgreSQL cannot be reached, the file is read only when it is a copy of the
 * configured database (same location) with exactly the configured kinds; once the database
 * is reached, a file from another cluster (another system identifier) is emptied and written
 * again. The rows written last may be up to SNAPSHOT_FLUSH_MS old after a crash; a graceful
 * stop writes everything.
 */
import Database from 'better-sqlite3';
import { resolve } from 'node:path';
import type { TableView } from '../core/table.js';
import type { Logger } from '../log.js';
import { createPrivately } from './sqlite/files.js';

/** How long a change waits in the queue before the batch that holds it is written. */
export const SNAPSHOT_FLUSH_MS = 250;
/** Rows written per transaction (one tick of the event loop each). */
export const SNAPSHOT_BATCH_ROWS = 1_000;
const FORMAT = '1';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
  CREATE TABLE IF NOT EXISTS assignments (
    kind TEXT NOT NULL, name TEXT NOT NULL, bucket TEXT NOT NULL, gen INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS assignments_gen ON assignments (kind, gen);
`;

/** What a snapshot is a copy of. */
export interface SnapshotIdentity {
  /** The store's location (no password). */
  readonly location: string;
  /** The cluster's system identifier; null when unknown (not reached yet, or not readable). */
  readonly systemId: string | null;
  readonly kinds: readonly string[];
}

/** The rows of a usable snapshot, and how old its last write is. */
export interface SnapshotContents {
  readonly rows: ReadonlyMap<string, ReadonlyArray<readonly [string, string]>>;
  readonly count: number;
  readonly writtenAt: number;
}

type Op =
  | { readonly t: 'put'; readonly kind: string; readonly name: string; readonly bucket: string }
  | { readonly t: 'remove'; readonly kind: string; readonly name: string }
  | {
      readonly t: 'replace';
      readonly kind: string;
      readonly names: string[];
      readonly view: TableView;
      pos: number;
      gen: number;
    };

export class Snapshot {
  private queue: Op[] = [];
  /** The queue's first unwritten op (shift() would copy the whole queue each time). */
  private head = 0;
  private timer: NodeJS.Timeout | undefined;
  /** The next batch of a long write, between two turns of the event loop. */
  private immediate: NodeJS.Immediate | undefined;
  private gen: number;
  /** Writes start once the live database's identity is recorded (claim()). */
  private claimed = false;
  private closed = false;
  private failing = false;

  private constructor(
    private readonly db: Database.Database,
    readonly path: string,
    private readonly log: Logger,
  ) {
    this.gen = (db.prepare('SELECT MAX(gen) AS g FROM assignments').get() as { g: number | null }).g ?? 0;
  }

  /** Opens (creating it 0600, and its folder 0700) the snapshot file. Throws when it cannot. */
  static open(path: string, log: Logger): Snapshot {
    const location = resolve(path);
    createPrivately(location);
    const db = new Database(location);
    try {
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.exec(SCHEMA);
      const format = meta(db, 'format');
      if (format !== undefined && format !== FORMAT) throw new Error(`format ${format}, this version writes ${FORMAT}`);
      db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run('format', FORMAT);
    } catch (err) {
      db.close();
      throw err;
    }
    return new Snapshot(db, location, log);
  }

  /**
   * The rows, when the file is a copy of `expected` (location and kinds; the system identifier
   * cannot be asked while the database is away); undefined with a warning when it is not.
   */
  read(expected: SnapshotIdentity, maxPerKind: number): SnapshotContents | undefined {
    const recorded = this.identity();
    const why =
      recorded === undefined
        ? 'it holds no table yet'
        : recorded.location !== expected.location
          ? `it is a copy of ${recorded.location}, not of ${expected.location}`
          : !sameKinds(recorded.kinds, expected.kinds)
            ? `it holds kinds ${recorded.kinds.join(', ') || '(none)'}, the configuration has ` +
              `${expected.kinds.join(', ')}`
            : undefined;
    if (why !== undefined) {
      this.log.warn(
        { event: 'snapshot_ignored', file: this.path, reason: why },
        `snapshot ${this.path} not used: ${why}`,
      );
      return undefined;
    }
    const rows = new Map<string, Array<readonly [string, string]>>();
    let count = 0;
    const select = this.db
      .prepare('SELECT name, bucket FROM assignments WHERE kind = ? ORDER BY name LIMIT ?')
      .raw(true);
    for (const kind of expected.kinds) {
      const list = select.all(kind, maxPerKind) as Array<[string, string]>;
      rows.set(kind, list);
      count += list.length;
    }
    return { rows, count, writtenAt: Number(meta(this.db, 'written_at') ?? 0) };
  }

  /**
   * The database was reached: records what the file is a copy of, empties it when it was a
   * copy of something else, and starts writing.
   */
  claim(identity: SnapshotIdentity): void {
    const recorded = this.identity();
    const other =
      recorded === undefined ||
      recorded.location !== identity.location ||
      !sameKinds(recorded.kinds, identity.kinds) ||
      (recorded.systemId !== null && identity.systemId !== null && recorded.systemId !== identity.systemId);
    if (other) {
      if (recorded !== undefined) {
        this.log.warn(
          { event: 'snapshot_replaced', file: this.path, was: recorded.location, system_id: recorded.systemId },
          `snapshot ${this.path} was a copy of another database or kinds: it is written afresh`,
        );
      }
      this.db.transaction(() => {
        this.db.exec('DELETE FROM assignments');
        this.setMeta(identity);
      })();
    } else this.setMeta(identity);
    this.claimed = true;
    this.later();
  }

  /** The configured kinds changed (a reload): rows of kinds no longer configured go. */
  setKinds(kinds: readonly string[]): void {
    const recorded = this.identity();
    if (!this.claimed || recorded === undefined) return;
    this.db.transaction(() => {
      this.db
        .prepare(`DELETE FROM assignments WHERE kind NOT IN (SELECT value FROM json_each(?))`)
        .run(JSON.stringify(kinds));
      this.setMeta({ ...recorded, kinds });
    })();
  }

  put(kind: string, name: string, bucket: string): void {
    this.push({ t: 'put', kind, name, bucket });
  }

  remove(kind: string, name: string): void {
    this.push({ t: 'remove', kind, name });
  }

  /** A load of the kind completed: the file's rows of it become the view's (names taken now). */
  replace(kind: string, view: TableView): void {
    for (let i = this.queue.length - 1; i >= this.head; i--) {
      const op = this.queue[i]!;
      // A rewrite not started yet is superseded by this one (it holds every later change too).
      if (op.t === 'replace' && op.kind === kind && op.pos === 0) this.queue.splice(i, 1);
    }
    this.push({ t: 'replace', kind, names: [...view.keys()], view, pos: 0, gen: 0 });
  }

  /** Rows and changes waiting to be written (tests). */
  get pending(): number {
    return this.queue.length - this.head;
  }

  /** Writes everything queued (a graceful stop) and closes the file. */
  close(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    try {
      if (this.claimed) while (this.pending > 0) this.writeBatch();
    } catch (err) {
      this.log.warn(
        { event: 'snapshot_write_failed', file: this.path, err: (err as Error).message },
        `cannot write snapshot ${this.path}`,
      );
    }
    this.closed = true;
    this.db.close();
  }

  private identity(): SnapshotIdentity | undefined {
    const location = meta(this.db, 'location');
    const kinds = meta(this.db, 'kinds');
    if (location === undefined || kinds === undefined) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(kinds);
    } catch {
      return undefined;
    }
    if (!Array.isArray(parsed) || !parsed.every((k) => typeof k === 'string')) return undefined;
    return { location, systemId: meta(this.db, 'system_id') ?? null, kinds: parsed };
  }

  private setMeta(identity: SnapshotIdentity): void {
    const set = this.db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)');
    set.run('location', identity.location);
    set.run('kinds', JSON.stringify([...identity.kinds].sort()));
    if (identity.systemId === null) this.db.prepare('DELETE FROM meta WHERE key = ?').run('system_id');
    else set.run('system_id', identity.systemId);
  }

  private push(op: Op): void {
    if (this.closed) return;
    this.queue.push(op);
    this.later();
  }

  private later(): void {
    if (this.timer !== undefined || this.immediate !== undefined || !this.claimed || this.closed || this.pending === 0)
      return;
    this.timer = setTimeout(() => this.tick(), SNAPSHOT_FLUSH_MS);
    this.timer.unref();
  }

  /** One batch per tick, then the next one at setImmediate, so requests are served between. */
  private tick(): void {
    this.timer = undefined;
    this.immediate = undefined;
    if (this.closed) return;
    try {
      this.writeBatch();
      if (this.failing) {
        this.failing = false;
        this.log.info({ event: 'snapshot_write_recovered', file: this.path }, `snapshot ${this.path} written again`);
      }
    } catch (err) {
      if (!this.failing) {
        this.failing = true;
        this.log.warn(
          { event: 'snapshot_write_failed', file: this.path, err: (err as Error).message },
          `cannot write snapshot ${this.path}; retrying`,
        );
      }
      this.later();
      return;
    }
    if (this.pending > 0) this.immediate = setImmediate(() => this.tick());
  }

  /** Applies up to SNAPSHOT_BATCH_ROWS rows from the head of the queue in one transaction. */
  private writeBatch(): void {
    const upsert = this.db.prepare(
      'INSERT INTO assignments (kind, name, bucket, gen) VALUES (?, ?, ?, ?) ON CONFLICT (kind, name) DO ' +
        'UPDATE SET bucket = excluded.bucket, gen = excluded.gen',
    );
    const del = this.db.prepare('DELETE FROM assignments WHERE kind = ? AND name = ?');
    // A failed transaction wrote nothing: its ops stay queued, as they were.
    const head = this.head;
    const started: Array<readonly [Extract<Op, { t: 'replace' }>, number]> = [];
    const write = this.db.transaction(() => {
      let budget = SNAPSHOT_BATCH_ROWS;
      while (budget > 0 && this.pending > 0) {
        const op = this.queue[this.head]!;
        if (op.t === 'put') {
          upsert.run(op.kind, op.name, op.bucket, this.gen);
          budget--;
        } else if (op.t === 'remove') {
          del.run(op.kind, op.name);
          budget--;
        } else {
          if (op.pos === 0) op.gen = ++this.gen;
          const start = op.pos;
          started.push([op, start]);
          const end = Math.min(op.names.length, start + budget);
          for (; op.pos < end; op.pos++) {
            const name = op.names[op.pos]!;
            const ref = op.view.peek(name);
            if (ref !== undefined) upsert.run(op.kind, name, ref.name, op.gen);
          }
          budget -= end - start;
          if (op.pos < op.names.length) break;
          this.db.prepare('DELETE FROM assignments WHERE kind = ? AND gen < ?').run(op.kind, op.gen);
          budget--;
        }
        this.head++;
      }
      this.db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run('written_at', String(Date.now()));
    });
    try {
      write();
    } catch (err) {
      this.head = head;
      for (const [op, pos] of started) op.pos = pos;
      throw err;
    }
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 4096 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
  }
}

function meta(db: Database.Database, key: string): string | undefined {
  return (db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
}

function sameKinds(a: readonly string[], b: readonly string[]): boolean {
  const x = [...a].sort();
  const y = [...b].sort();
  return x.length === y.length && x.every((k, i) => k === y[i]);
}
