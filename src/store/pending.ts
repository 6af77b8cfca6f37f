/**
 * A store that could not be opened at start (PostgreSQL unreachable) and is opened in the
 * background: until it is, every operation fails at once with StoreUnavailableError (503),
 * so an instance started from its snapshot (store/snapshot.ts) answers the users it knows from
 * memory and refuses new ones without waiting; once it is, every operation is the real
 * store's, and the change listeners registered meanwhile start watching it.
 */
import { StoreUnavailableError } from '../errors.js';
import type { Logger } from '../log.js';
import type {
  AssignResult,
  Assignment,
  AuditContext,
  AuditEntry,
  AuditQuery,
  ChangeListener,
  CountFix,
  DuplicateObject,
  ImportBatchResult,
  ImportRow,
  MoveBatchResult,
  MoveRequest,
  PutResult,
  Store,
} from './types.js';
import type { BucketPolicyInput } from '../core/policy.js';

/** Back-off between attempts to open the store. */
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 5_000;

interface Watch {
  readonly listener: ChangeListener;
  readonly pollMs: number;
  stop: (() => void) | undefined;
  stopped: boolean;
}

export class PendingStore<S extends Store = Store> implements Store {
  readonly backend: string;
  readonly location: string;
  private inner: S | undefined;
  private readonly watches = new Set<Watch>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private delay = RETRY_MIN_MS;

  /** `open` is tried again and again until it resolves; `opened` is then called with the store. */
  constructor(
    backend: string,
    location: string,
    private readonly open: () => Promise<S>,
    private readonly opened: (store: S) => void,
    private readonly log: Logger,
  ) {
    this.backend = backend;
    this.location = location;
    this.later();
  }

  /** The real store once it is open. */
  get store(): S | undefined {
    return this.inner;
  }

  private later(): void {
    this.timer = setTimeout(() => void this.attempt(), this.delay);
    this.timer.unref();
    this.delay = Math.min(this.delay * 2, RETRY_MAX_MS);
  }

  private async attempt(): Promise<void> {
    let store: S;
    try {
      store = await this.open();
    } catch {
      if (!this.closed) this.later();
      return;
    }
    if (this.closed) {
      await store.close();
      return;
    }
    this.inner = store;
    this.log.info(
      { event: 'store_reached', backend: this.backend, location: this.location },
      `the ${this.backend} store ${this.location} answers again`,
    );
    for (const w of this.watches) if (!w.stopped) w.stop = store.watch(w.listener, w.pollMs);
    this.opened(store);
  }

  private get s(): S {
    if (this.closed || this.inner === undefined)
      throw new StoreUnavailableError(
        `the ${this.backend} store ${this.location} could not be reached since this instance started`,
      );
    return this.inner;
  }

  private call<T>(fn: (s: S) => Promise<T>): Promise<T> {
    try {
      return fn(this.s);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  lookup(kind: string, name: string): Promise<string | undefined> {
    return this.call((s) => s.lookup(kind, name));
  }
  assign(kind: string, name: string, buckets: readonly BucketPolicyInput[]): Promise<AssignResult> {
    return this.call((s) => s.assign(kind, name, buckets));
  }
  counts(kind: string): Promise<Map<string, number>> {
    return this.call((s) => s.counts(kind));
  }
  realCounts(kind: string): Promise<Map<string, number>> {
    return this.call((s) => s.realCounts(kind));
  }
  get(kind: string, name: string): Promise<Assignment | undefined> {
    return this.call((s) => s.get(kind, name));
  }
  put(
    kind: string,
    name: string,
    bucket: string,
    audit: AuditContext,
    opts?: { expect?: string | null },
  ): Promise<PutResult> {
    return this.call((s) => s.put(kind, name, bucket, audit, opts));
  }
  delete(kind: string, name: string, audit: AuditContext, opts?: { expect?: string }): Promise<string | undefined> {
    return this.call((s) => s.delete(kind, name, audit, opts));
  }
  list(
    kind: string,
    opts: { bucket?: string | undefined; after?: string | undefined; limit: number },
  ): Promise<Assignment[]> {
    return this.call((s) => s.list(kind, opts));
  }
  moveBatch(kind: string, moves: readonly MoveRequest[], audit: AuditContext): Promise<MoveBatchResult> {
    return this.call((s) => s.moveBatch(kind, moves, audit));
  }
  importBatch(
    rows: readonly ImportRow[],
    opts: { overwrite: boolean },
    audit: AuditContext,
  ): Promise<ImportBatchResult> {
    return this.call((s) => s.importBatch(rows, opts, audit));
  }
  audit(query: AuditQuery): Promise<AuditEntry[]> {
    return this.call((s) => s.audit(query));
  }
  repairCounts(audit: AuditContext, kind?: string): Promise<CountFix[]> {
    return this.call((s) => s.repairCounts(audit, kind));
  }
  kinds(): Promise<string[]> {
    return this.call((s) => s.kinds());
  }
  duplicates(limit: number): Promise<DuplicateObject[]> {
    return this.call((s) => s.duplicates(limit));
  }
  ping(): Promise<void> {
    return this.call((s) => s.ping());
  }

  async *export(opts?: { kind?: string | undefined; pageSize?: number | undefined }): AsyncIterable<Assignment> {
    yield* this.s.export(opts);
  }

  watch(listener: ChangeListener, pollMs: number): () => void {
    const w: Watch = { listener, pollMs, stop: this.inner?.watch(listener, pollMs), stopped: false };
    this.watches.add(w);
    return () => {
      w.stopped = true;
      this.watches.delete(w);
      w.stop?.();
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.inner?.close();
  }
}
