/**
 * What a store's health check (ping, behind /readyz) knows about writes. A store can answer
 * reads while every new assignment fails: SQLite on a full disk, PostgreSQL on a read-only
 * standby after a failover. Readiness must say what the assign path sees, so:
 *   - a StoreUnavailableError from an assignment is remembered, and ping() fails with it;
 *   - while one is remembered, ping() runs the store's write probe (a small committed write),
 *     and a probe or an assignment that commits forgets it.
 * While nothing failed, ping() writes nothing. The probe is what lets readiness recover when
 * no new user comes (a load balancer sends none to an instance that is not ready).
 */
import { StoreUnavailableError } from '../errors.js';

export class WriteHealth {
  private failure: StoreUnavailableError | null = null;

  /**
   * Follows one assignment: a store failure is remembered; a result for which `committed` is
   * true (something was written) forgets it. Resolves or rejects as `write` does.
   */
  async follow<T>(write: Promise<T>, committed: (result: T) => boolean): Promise<T> {
    try {
      const result = await write;
      if (committed(result)) this.failure = null;
      return result;
    } catch (err) {
      if (err instanceof StoreUnavailableError) this.failure = err;
      throw err;
    }
  }

  /** For ping(): resolves when no write failed since the last one that committed, or when `probe` commits now. */
  async check(probe: () => Promise<void>): Promise<void> {
    if (this.failure === null) return;
    await this.follow(probe(), () => true);
  }

  /** The remembered failure, for diagnostics and tests. */
  get lastFailure(): StoreUnavailableError | null {
    return this.failure;
  }
}
