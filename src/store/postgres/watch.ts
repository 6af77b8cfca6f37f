/**
 * Cross-instance change propagation for the PostgreSQL backend.
 *
 * The UPDATE/DELETE/TRUNCATE triggers append to the `changes` table (ids handed out in commit
 * order, see schema.ts) and NOTIFY. Each watcher:
 *   - LISTENs on a dedicated connection (not from the pool: a pooled connection would be handed
 *     to queries and LISTEN needs a session that stays), and reads the feed when notified;
 *   - reads the feed every `pollMs` anyway, as a backstop when a notification is missed
 *     (LISTEN connection dropped, NOTIFY lost in a failover);
 *   - reports every row with the bucket it records (first assignments and moves; none for a
 *     delete), and a row with an empty name as "the whole kind changed" (a bulk insert);
 *   - reports "anything may have changed" (listener(null, null): every table is read again)
 *     when it cannot know what it missed: its cursor fell behind pruned rows, the feed went
 *     backwards (database restored or failed over), or the LISTEN connection was lost and
 *     re-established (which is also what catches a failover to a standby whose feed ids were
 *     reused past this instance's cursor);
 *   - pings its LISTEN connection, so that a half-open one is replaced quickly;
 *   - prunes feed rows older than the retention (every instance does; it is idempotent).
 */
import type pg from 'pg';
import type { Logger } from '../../log.js';
import { SQL } from './schema.js';
import type { ChangeListener } from '../types.js';

/** Feed rows are kept this long; an instance further behind drops its whole cache. */
export const CHANGES_RETENTION_MS = 24 * 3600 * 1000;
/** How often old feed rows are deleted. */
const PRUNE_EVERY_MS = 3600 * 1000;
/** Feed rows read per query. */
const PAGE = 10_000;
/** How often the LISTEN connection is checked with a trivial query. */
const LISTEN_PING_MS = 10_000;
/** Reconnect back-off for the LISTEN connection. */
const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 5_000;

export interface WatcherOptions {
  pool: pg.Pool;
  /** Makes the dedicated LISTEN connection (not connected yet), to the store's current host. */
  newClient: () => pg.Client;
  listener: ChangeListener;
  pollMs: number;
  log: Logger;
}

export class PostgresChangeWatcher {
  private cursor: number | null = null;
  private resetPending = false;
  private reading = false;
  private again = false;
  private stopped = false;
  private feedFailing = false;
  private listenClient: pg.Client | null = null;
  private listening = false;
  private pinging = false;
  private everListened = false;
  private reconnectDelay = RECONNECT_MIN_MS;
  private readonly timers: NodeJS.Timeout[] = [];
  private reconnectTimer: NodeJS.Timeout | undefined;

  constructor(private readonly o: WatcherOptions) {}

  start(): void {
    const every = (ms: number, fn: () => void): void => {
      const t = setInterval(fn, ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.o.pollMs, () => this.read());
    every(LISTEN_PING_MS, () => this.pingListen());
    every(PRUNE_EVERY_MS, () => this.prune());
    this.read();
    void this.connectListen();
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.reconnectTimer);
    const c = this.listenClient;
    this.listenClient = null;
    if (c) void c.end().catch(() => undefined);
  }

  /** True while the LISTEN connection is up (for tests and diagnostics). */
  get isListening(): boolean {
    return this.listening;
  }

  /** Reads the feed now; calls arriving during a read coalesce into one more read. */
  read(): void {
    if (this.stopped) return;
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = true;
    void (async () => {
      try {
        do {
          this.again = false;
          await this.readOnce();
        } while (this.again && !this.stopped);
        if (this.feedFailing) {
          this.feedFailing = false;
          this.o.log.info({ event: 'change_feed_recovered' }, 'change feed readable again');
        }
      } catch (err) {
        // The cursor stays where it was: the feed is durable, the next tick reads from there.
        if (!this.feedFailing) {
          this.feedFailing = true;
          this.o.log.warn(
            { event: 'change_feed_unreadable', err: (err as Error).message },
            'cannot read the change feed; retrying every poll',
          );
        }
      } finally {
        this.reading = false;
      }
    })();
  }

  private async readOnce(): Promise<void> {
    const cursor = this.cursor;
    const state = await this.o.pool.query<{ last: string | null; here: boolean }>(SQL.feedState, [cursor ?? 0]);
    const last = Number(state.rows[0]!.last ?? 0);
    if (cursor === null || this.resetPending) {
      // Read the newest id first, then say "anything may have changed": anything newer is read
      // at the next tick. On the first read too: what was committed before the cursor was
      // placed may be missing from what the listener read before it (an instance loading its
      // table while another assigns), so it reads again from here.
      this.cursor = last;
      this.resetPending = false;
      this.o.listener(null, null);
      return;
    }
    if (last === cursor) return;
    if (last < cursor || (cursor > 0 && !state.rows[0]!.here)) {
      this.o.log.warn(
        { event: 'change_feed_gap', cursor, last },
        'changes may have been missed (feed pruned past this instance, or the database was restored): dropping ' +
          'cached assignments',
      );
      this.cursor = last;
      this.o.listener(null, null);
      return;
    }
    for (;;) {
      const { rows } = await this.o.pool.query<{ id: string; kind: string; name: string; bucket: string | null }>(
        SQL.changesSince,
        [this.cursor, PAGE],
      );
      for (const r of rows) {
        if (r.kind === '') this.o.listener(null, null);
        else if (r.name === '') this.o.listener(r.kind, null);
        else if (r.bucket === null) this.o.listener(r.kind, r.name);
        else this.o.listener(r.kind, r.name, r.bucket);
      }
      if (rows.length > 0) this.cursor = Number(rows.at(-1)!.id);
      if (rows.length < PAGE || this.stopped) break;
    }
  }

  private async connectListen(): Promise<void> {
    if (this.stopped) return;
    const client = this.o.newClient();
    this.listenClient = client;
    client.on('notification', () => this.read());
    client.on('error', (err) => this.listenLost(client, err));
    client.on('end', () => this.listenLost(client, undefined));
    try {
      await client.connect();
      await client.query(SQL.listen);
    } catch (err) {
      this.listenLost(client, err);
      return;
    }
    if (this.stopped || this.listenClient !== client) return;
    this.reconnectDelay = RECONNECT_MIN_MS;
    this.listening = true;
    if (this.everListened) {
      // Notifications sent while we were away are gone, and the database we reconnected to
      // may be a restored or promoted copy whose feed differs: start from a clean cache.
      this.resetPending = true;
      this.o.log.info(
        { event: 'change_listener_reconnected' },
        'LISTEN connection re-established: dropping cached assignments',
      );
    }
    this.everListened = true;
    this.read();
  }

  private listenLost(client: pg.Client, err: unknown): void {
    if (this.listenClient !== client) return;
    this.listenClient = null;
    const wasListening = this.listening;
    this.listening = false;
    client.removeAllListeners('notification');
    client.removeAllListeners('end');
    client.removeAllListeners('error');
    client.on('error', () => undefined);
    void client.end().catch(() => undefined);
    if (this.stopped) return;
    if (wasListening || this.reconnectDelay === RECONNECT_MIN_MS) {
      this.o.log.warn(
        { event: 'change_listener_lost', err: err instanceof Error ? err.message : 'connection ended' },
        'LISTEN connection lost; reconnecting (changes are still read every poll)',
      );
    }
    const delay = this.reconnectDelay;
    this.reconnectDelay = Math.min(delay * 2, RECONNECT_MAX_MS);
    this.reconnectTimer = setTimeout(() => void this.connectListen(), delay);
    this.reconnectTimer.unref();
  }

  /** One ping at a time: a query issued while another is still running on the same client
   * is queued by pg, which deprecates that (DeprecationWarning) — a slow or half-open
   * connection would otherwise pile pings up. */
  private pingListen(): void {
    const c = this.listenClient;
    if (!c || !this.listening || this.pinging) return;
    this.pinging = true;
    c.query('SELECT 1')
      .then(
        () => undefined,
        (err: unknown) => this.listenLost(c, err),
      )
      .finally(() => {
        this.pinging = false;
      });
  }

  private prune(): void {
    this.o.pool.query(SQL.pruneChanges, [CHANGES_RETENTION_MS]).catch(() => undefined);
  }
}
