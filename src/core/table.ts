/**
 * The whole assignment table of the configured kinds, in memory, in every instance: so that
 * a user another instance assigned is answered here too while the database is away (behind
 * a load balancer users move between instances all the time).
 *
 * The table is each kind's BoundedCache (buckets.ts), so a hit stays what it was: one Map
 * lookup, synchronous, no allocation. This module fills and maintains it:
 *   - at start, each kind is read from the store in keyset pages (list(), ordered by name)
 *     straight into the cache; requests meanwhile are answered as before (a name not loaded
 *     yet is a miss and goes to the store);
 *   - every change the store's feed reports is applied as it arrives: a first assignment or
 *     a move that names its bucket is written into the cache; a delete (or a change without
 *     a bucket, as SQLite's feed reports them and this process's admin operations announce
 *     them) drops the entry and reads it again;
 *   - "anything may have changed" (a gap in the feed, a reconnect, an import) reads the kind
 *     again into a fresh cache and swaps it in when complete, so the old table keeps
 *     answering meanwhile (memory is twice the table's for that while);
 *   - a change reported while a page is being read wins over that page (the page may have
 *     been read before the change committed): names touched during a load are skipped when
 *     its pages are applied, and carried over from the live cache when a fresh one is swapped in.
 * A kind with more assignments than cache.max_entries is loaded up to the bound (the first
 * names in byte order), with a warning; the rest are read from the store on first use and
 * the cache evicts approximately least-recently-used, as before.
 *
 * With store.snapshot_file, every change applied here (and every first assignment this
 * process makes) is also queued for the local snapshot (store/snapshot.ts), and a completed
 * load rewrites the kind there. A kind seeded from the snapshot at start (the database away)
 * is read afresh when the database returns: its first load is swapped in whole, so the
 * database wins over the snapshot.
 */
import type { Assigner } from './assigner.js';
import type { BucketRef, KindRuntime } from './buckets.js';
import { BoundedCache } from './cache.js';
import type { AssignmentSource, EventLog } from './ports.js';

/** Rows per page when reading a kind. */
export const LOAD_PAGE_ROWS = 20_000;
/** Back-off between attempts when a load fails (the store is down at start). */
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 10_000;

interface Load {
  readonly kind: KindRuntime;
  /** Names whose change was applied while this load ran: the load's pages must not overwrite them. */
  readonly touched: Set<string>;
  cancelled: boolean;
}

export interface TableOptions {
  store: AssignmentSource;
  /** The configured kinds (the live map: kinds added on reload are loaded by loadNew()). */
  kinds: () => ReadonlyMap<string, KindRuntime>;
  assigner: Assigner;
  log: EventLog;
  pageRows?: number;
  /** The local snapshot the table's changes are copied to (store.snapshot_file), if any. */
  snapshot?: TableSink | undefined;
}

/**
 * A kind's table as the sink reads it when rewriting the kind: names now, and each name's bucket
 * when written (a BoundedCache is one).
 */
export interface TableView {
  keys(): Iterable<string>;
  peek(name: string): { readonly name: string } | undefined;
}

/** Where the table's changes are copied (store/snapshot.ts). */
export interface TableSink {
  put(kind: string, name: string, bucket: string): void;
  remove(kind: string, name: string): void;
  replace(kind: string, view: TableView): void;
}

/** What a kind's table holds, for logs, the status page and tests. */
export interface KindTableState {
  readonly loaded: boolean;
  /** Rows read by the last completed load (0 before the first). */
  readonly rows: number;
  /** How long the last completed load took, in ms. */
  readonly ms: number;
}

export class AssignmentTable {
  private readonly loads = new Map<string, Load>();
  private readonly states = new Map<string, KindTableState>();
  /** Kinds whose first load was started (by object: a kind removed and added again is new). */
  private readonly seen = new WeakSet<KindRuntime>();
  /** Kinds filled from the snapshot: their first load replaces the cache instead of adding to it. */
  private readonly seeded = new WeakSet<KindRuntime>();
  /** Reads of single names after a change without a bucket; a newer change cancels one. */
  private readonly refreshing = new Map<string, number>();
  private token = 0;
  private stopped = false;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly waiters: Array<() => void> = [];

  constructor(private readonly o: TableOptions) {}

  /** Starts loading every configured kind not loaded yet (at start, and after a reload). */
  loadNew(): void {
    for (const kind of this.o.kinds().values()) {
      if (this.seen.has(kind)) continue;
      this.seen.add(kind);
      this.schedule(kind, !this.seeded.has(kind), 0);
    }
  }

  /**
   * Fills a kind's cache from the snapshot (at start, the database away; before loadNew()).
   * Returns the rows put in (at most cache.max_entries).
   */
  seed(kind: KindRuntime, rows: Iterable<readonly [string, string]>): number {
    this.seeded.add(kind);
    let n = 0;
    for (const [name, bucket] of rows) {
      if (n >= kind.cache.max) break;
      kind.cache.set(name, kind.ref(bucket));
      n++;
    }
    return n;
  }

  /** This process made a first assignment (the feed reports it too, later). */
  assigned(kind: string, name: string, bucket: string): void {
    this.o.snapshot?.put(kind, name, bucket);
  }

  /** Resolves once every configured kind has been loaded (tests, benchmarks). */
  whenLoaded(): Promise<void> {
    if (this.allLoaded()) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  state(kind: string): KindTableState {
    return this.states.get(kind) ?? { loaded: false, rows: 0, ms: 0 };
  }

  /** The store's change listener (and this process's own admin operations' announcements). */
  changed(kind: string | null, name: string | null, bucket?: string): void {
    this.o.assigner.invalidate(kind, name, bucket);
    if (kind === null) {
      for (const k of this.o.kinds().values()) this.schedule(k, false, 0);
      return;
    }
    const k = this.o.kinds().get(kind);
    if (k === undefined) return;
    if (name === null) {
      this.schedule(k, false, 0);
      return;
    }
    this.loads.get(kind)?.touched.add(name);
    const key = `${kind}\0${name}`;
    this.refreshing.delete(key);
    if (bucket !== undefined) {
      k.cache.set(name, k.ref(bucket));
      this.o.snapshot?.put(kind, name, bucket);
      return;
    }
    k.cache.delete(name);
    this.o.snapshot?.remove(kind, name);
    this.refresh(k, name, key);
  }

  stop(): void {
    this.stopped = true;
    for (const l of this.loads.values()) l.cancelled = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private allLoaded(): boolean {
    for (const k of this.o.kinds().keys()) if (!this.state(k).loaded) return false;
    return true;
  }

  private refresh(kind: KindRuntime, name: string, key: string): void {
    const token = ++this.token;
    this.refreshing.set(key, token);
    const mine = (): boolean => {
      if (this.refreshing.get(key) !== token) return false;
      this.refreshing.delete(key);
      return !this.stopped;
    };
    this.o.store.lookup(kind.name, name).then(
      (bucket) => {
        if (mine() && bucket !== undefined) {
          kind.cache.set(name, kind.ref(bucket));
          this.o.snapshot?.put(kind.name, name, bucket);
        }
      },
      // The store is away: the name is a miss until it returns (then read on first use).
      () => void mine(),
    );
  }

  /** Starts a load of `kind` now (delay 0) or later, cancelling the one running. */
  private schedule(kind: KindRuntime, fresh: boolean, delayMs: number): void {
    if (this.stopped) return;
    const running = this.loads.get(kind.name);
    if (running !== undefined) running.cancelled = true;
    const load: Load = { kind, touched: new Set(), cancelled: false };
    this.loads.set(kind.name, load);
    const run = (): void => {
      this.load(load, fresh).catch((err: unknown) => {
        if (load.cancelled || this.stopped) return;
        const next = Math.min(Math.max(delayMs * 2, RETRY_MIN_MS), RETRY_MAX_MS);
        if (delayMs === 0) {
          this.o.log.warn(
            { event: 'table_load_failed', kind: kind.name, err: (err as Error).message, retry_ms: next },
            'cannot read the assignment table; names are read from the store on first use until it can',
          );
        }
        this.schedule(kind, fresh, next);
      });
    };
    if (delayMs === 0) {
      run();
      return;
    }
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!load.cancelled) run();
    }, delayMs);
    t.unref();
    this.timers.add(t);
  }

  /**
   * Reads the kind page by page: into the live cache when `fresh` (the first load: nothing
   * in it can be stale), else into a new cache swapped in at the end.
   */
  private async load(load: Load, fresh: boolean): Promise<void> {
    const { kind } = load;
    const started = performance.now();
    const max = kind.cache.max;
    const counts = await this.o.store.counts(kind.name);
    let total = 0;
    for (const n of counts.values()) total += n;
    if (load.cancelled) return;
    if (total > max) {
      this.o.log.warn(
        { event: 'table_exceeds_cache', kind: kind.name, assignments: total, max_entries: max },
        `kind ${kind.name} has ${total} assignments but cache.max_entries is ${max}: ${max} are loaded, the ` +
          'rest are read from the store on first use and cannot be answered while it is away; raise ' +
          'cache.max_entries (about 120-140 bytes each)',
      );
    }
    const target = fresh ? kind.cache : new BoundedCache<BucketRef>(max);
    const pageRows = this.o.pageRows ?? LOAD_PAGE_ROWS;
    let rows = 0;
    let after: string | undefined;
    while (rows < max) {
      const limit = Math.min(pageRows, max - rows);
      const page = await this.o.store.list(kind.name, { after, limit });
      if (load.cancelled) return;
      for (const a of page) if (!load.touched.has(a.name)) target.set(a.name, kind.ref(a.bucket));
      rows += page.length;
      if (page.length < limit) break;
      after = page.at(-1)!.name;
    }
    if (!fresh) {
      for (const name of load.touched) {
        const live = kind.cache.peek(name);
        if (live === undefined) target.delete(name);
        else target.set(name, live);
      }
      kind.cache.replaceWith(target);
    }
    this.o.snapshot?.replace(kind.name, kind.cache);
    this.loads.delete(kind.name);
    const ms = Math.round(performance.now() - started);
    this.states.set(kind.name, { loaded: true, rows, ms });
    this.o.log.info(
      { event: 'table_loaded', kind: kind.name, rows, ms, fresh },
      `assignment table of ${kind.name} loaded: ${rows} rows in ${ms} ms`,
    );
    if (this.allLoaded()) for (const w of this.waiters.splice(0)) w();
  }
}
