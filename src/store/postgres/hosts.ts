/**
 * Several PostgreSQL hosts, one of which accepts writes: libpq's multi-host connection
 * strings and target_session_attrs, for pg (which has neither).
 *
 * Every connection the backend makes (the pool's, the LISTEN connection, the migration
 * connection) is a FailoverClient: it connects to the host currently chosen and, unless
 * target_session_attrs is `any`, checks the session as libpq does (`SHOW
 * transaction_read_only` for read-write, `pg_is_in_recovery()` for primary) before it is
 * used. A connection that cannot be made or fails the check, or a write refused as read-only
 * (SQLSTATE 25006: the host was demoted), marks its host failed: the hosts are then probed
 * in order, one probe at a time, and the first acceptable one becomes the current host. The
 * request that hit the failure is answered 503 at once (the caller does not wait for the
 * probe); requests after the probe go to the new primary. Nothing restarts.
 */
import pg from 'pg';
import type { PgTargetSessionAttrs } from '../../config/postgres.js';
import { StoreUnavailableError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { withSettings } from './connect.js';

/** Least time between two probes started by failures (a storm of failures probes once). */
const PROBE_GAP_MS = 200;

export interface PgHostPort {
  readonly host: string;
  readonly port: number;
}

const where = (h: PgHostPort): string =>
  h.host.includes(':') || h.host.startsWith('/') ? `[${h.host}]:${h.port}` : `${h.host}:${h.port}`;

/** Why a session does not pass target_session_attrs, or undefined when it does. */
async function refusal(c: pg.Client, target: PgTargetSessionAttrs): Promise<string | undefined> {
  if (target === 'any') return undefined;
  if (target === 'read-write') {
    const { rows } = await c.query<{ transaction_read_only: string }>('SHOW transaction_read_only');
    return rows[0]?.transaction_read_only === 'off' ? undefined : 'read-only (a standby)';
  }
  const { rows } = await c.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r');
  return rows[0]?.r === false ? undefined : 'in recovery (a standby)';
}

export class PostgresHosts {
  private current = 0;
  private probing: Promise<void> | undefined;
  private lastProbe = 0;
  /** The pg.Client class every connection of this backend is made with. */
  readonly Client: typeof pg.Client;

  constructor(
    readonly hosts: readonly PgHostPort[],
    readonly target: PgTargetSessionAttrs,
    private readonly base: pg.ClientConfig,
    private readonly log: Logger,
  ) {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the client class below has its own `this`
    const owner = this;
    this.Client = class FailoverClient extends pg.Client {
      /** Index of the host this connection went to. */
      readonly hostIndex: number;

      constructor(config?: pg.ClientConfig) {
        const index = owner.current;
        super(withSettings(config ?? owner.base, { host: owner.hosts[index]!.host, port: owner.hosts[index]!.port }));
        this.hostIndex = index;
      }

      override connect(): Promise<pg.Client>;
      override connect(callback: ((err: Error) => void) | ((err: null, c: pg.Client) => void)): void;
      override connect(
        callback?: ((err: Error) => void) | ((err: null, c: pg.Client) => void),
      ): Promise<pg.Client> | void {
        // pg calls a connect callback at once, and pg-pool attaches its 'error' listener in
        // it. Ours is called a few promise steps later (after the session check), so a server
        // that ends the session in the same read as its ready message (pg_terminate_backend,
        // a shutdown: 57P01) would emit 'error' with no listener: an uncaught exception. Until
        // the caller has its client, this listener takes that error, and the connect fails
        // with it, as it does with pg's own client.
        let lost: Error | undefined;
        const early = (err: Error): void => void (lost ??= err);
        this.on('error', early);
        const p = owner.checked(this, super.connect()).then(
          () => {
            if (lost === undefined) return this;
            owner.failed(this.hostIndex);
            void this.end().catch(() => undefined);
            throw lost;
          },
          (err: unknown) => {
            // The session check, on a client that is already lost, fails for that reason.
            throw lost ?? err;
          },
        );
        const handed = (): void => void this.off('error', early);
        if (callback === undefined) return p.finally(handed);
        p.then(
          (c) => (callback as (err: null, c: pg.Client) => void)(null, c),
          (err: Error) => (callback as (err: Error) => void)(err),
        ).finally(handed);
      }
    };
  }

  /** The host connections go to now, for logs and tests. */
  get currentHost(): PgHostPort {
    return this.hosts[this.current]!;
  }

  /** Several hosts, or a session check: whether failures need reporting at all. */
  get active(): boolean {
    return this.hosts.length > 1 || this.target !== 'any';
  }

  private async checked(c: pg.Client & { hostIndex?: number }, connected: Promise<unknown>): Promise<void> {
    const index = c.hostIndex ?? this.current;
    try {
      await connected;
    } catch (err) {
      this.failed(index);
      throw err;
    }
    let why: string | undefined;
    try {
      why = await refusal(c, this.target);
    } catch (err) {
      this.failed(index);
      await c.end().catch(() => undefined);
      throw err;
    }
    if (why !== undefined) {
      this.failed(index);
      await c.end().catch(() => undefined);
      throw new StoreUnavailableError(
        `PostgreSQL host ${where(this.hosts[index]!)} is ${why}, not ${this.target}: looking for the one that is`,
      );
    }
  }

  /** A connection to host `index` failed or was refused: find the acceptable host again (in the background). */
  failed(index: number | undefined): void {
    if (!this.active || (index !== undefined && index !== this.current)) return;
    if (this.probing !== undefined || Date.now() - this.lastProbe < PROBE_GAP_MS) return;
    this.find().catch(() => undefined);
  }

  /**
   * Tries the hosts in order, starting with the one after the current (which just failed),
   * and makes the first acceptable one current. Throws StoreUnavailableError naming each
   * host and why when none is. One probe at a time; callers during one share it.
   */
  find(): Promise<void> {
    if (!this.active) return Promise.resolve();
    this.probing ??= this.probe().finally(() => {
      this.probing = undefined;
      this.lastProbe = Date.now();
    });
    return this.probing;
  }

  private async probe(): Promise<void> {
    const n = this.hosts.length;
    const tried: string[] = [];
    const start = this.current;
    // The current host first only on the very first probe (at open): after a failure it is the suspect.
    const order =
      this.lastProbe === 0 ? [...Array(n).keys()] : Array.from({ length: n }, (_, i) => (start + 1 + i) % n);
    for (const i of order) {
      const h = this.hosts[i]!;
      const c = new pg.Client(withSettings(this.base, { host: h.host, port: h.port }));
      c.on('error', () => undefined);
      try {
        await c.connect();
        const why = await refusal(c, this.target);
        if (why === undefined) {
          if (i !== this.current) {
            this.log.warn(
              {
                event: 'postgres_host_changed',
                from: where(this.hosts[this.current]!),
                to: where(h),
                target_session_attrs: this.target,
              },
              `PostgreSQL: connections now go to ${where(h)}`,
            );
          }
          this.current = i;
          return;
        }
        tried.push(`${where(h)} is ${why}`);
      } catch (err) {
        tried.push(`${where(h)}: ${(err as Error).message}`);
      } finally {
        await c.end().catch(() => undefined);
      }
    }
    throw new StoreUnavailableError(`no PostgreSQL host is ${this.target}: ${tried.join('; ')}`);
  }
}
