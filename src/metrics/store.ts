/**
 * Store metrics without knowing the backend: the Store is wrapped, and every method that
 * returns a promise is timed and its failures counted, labelled by method name (a fixed set:
 * the Store interface). SQLite, PostgreSQL or any later backend is measured the same way.
 */
import { ShardError } from '../errors.js';
import type { Store } from '../store/types.js';

export interface StoreObserver {
  /** A store call finished: its duration, and the error code when it failed. */
  done(operation: string, seconds: number, errorCode: string | null): void;
}

/** Methods not timed: the change watcher and closing are not operations on the data. */
const UNTIMED = new Set<string | symbol>(['watch', 'close', 'constructor']);

/** The error's stable code; driver errors that were not converted count as `other`. */
export function errorCode(err: unknown): string {
  return err instanceof ShardError ? err.code : 'other';
}

/**
 * The store, with its promise-returning methods timed. Other properties (backend, location,
 * a backend's own extras) are passed through; methods run with the real store as `this`.
 */
export function instrumentStore(store: Store, observer: StoreObserver): Store {
  const wrapped = new Map<string | symbol, unknown>();
  return new Proxy(store, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown;
      if (typeof v !== 'function' || UNTIMED.has(prop))
        return typeof v === 'function' ? (v.bind(target) as unknown) : v;
      let w = wrapped.get(prop);
      if (w === undefined) {
        const fn = v as (...args: unknown[]) => unknown;
        const operation = String(prop);
        w = (...args: unknown[]): unknown => {
          const start = performance.now();
          const r = fn.apply(target, args);
          if (!(r instanceof Promise)) return r;
          return r.then(
            (value: unknown) => {
              observer.done(operation, (performance.now() - start) / 1000, null);
              return value;
            },
            (err: unknown) => {
              observer.done(operation, (performance.now() - start) / 1000, errorCode(err));
              throw err;
            },
          );
        };
        wrapped.set(prop, w);
      }
      return w;
    },
  });
}
