/**
 * The running sharder: store, runtime kinds, assigner and the main listener, with reload and
 * graceful stop. The CLI's `serve` wires signals to it; tests start it in-process.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { Config } from './config/types.js';
import type { Logger } from './log.js';
import { Assigner } from './service/assigner.js';
import { applyConfig, type KindRuntime } from './service/runtime.js';
import { createMainServer, type MainContext, type MainSettings } from './http/main.js';
import { identitySettings } from './http/identity.js';
import { openStore } from './store/open.js';
import type { Store } from './store/types.js';

/** How long a graceful stop waits for requests in flight before closing their connections. */
export const STOP_GRACE_MS = 10_000;

export interface SharderOptions {
  log: Logger;
  /** An already-open store (tests); otherwise the configured one is opened. */
  store?: Store;
}

export class Sharder {
  private readonly kinds = new Map<string, KindRuntime>();
  private readonly ctx: MainContext;
  private readonly stopWatching: () => void;
  private stopping: Promise<void> | undefined;
  readonly server: Server;

  private constructor(
    private config: Config,
    readonly store: Store,
    private readonly log: Logger,
  ) {
    this.ctx = {
      settings: this.settingsFor(config),
      assigner: new Assigner(store, log, () => this.config.store.timeoutMs),
      log,
      ready: () => store.ping(),
    };
    this.server = createMainServer(this.ctx);
    this.stopWatching = store.watch((kind, name) => this.invalidate(kind, name), config.store.pollMs);
  }

  static async start(config: Config, opts: SharderOptions): Promise<Sharder> {
    const store = opts.store ?? (await openStore(config, opts.log));
    const sharder = new Sharder(config, store, opts.log);
    try {
      sharder.server.listen(config.listen.port, config.listen.host);
      await once(sharder.server, 'listening');
    } catch (err) {
      sharder.stopWatching();
      if (!opts.store) await store.close();
      throw err;
    }
    opts.log.info({
      event: 'started',
      config: config.file,
      store: { backend: store.backend, location: store.location },
      listen: sharder.url,
      kinds: Object.fromEntries([...config.kinds].map(([k, v]) => [k, v.buckets.map((b) => `${b.name}(${b.state}, weight ${b.weight})`)])),
    }, `sharder listening on ${sharder.url}`);
    return sharder;
  }

  /** Updates the runtime kinds and returns the handlers' settings for a configuration. */
  private settingsFor(config: Config): MainSettings {
    applyConfig(this.kinds, config);
    return {
      identity: identitySettings(config.identity.header, config.identity.trustedProxies, config.identity.maxLength),
      kindHeader: config.kindHeader.toLowerCase(),
      defaultKind: this.kinds.get(config.defaultKind)!,
      kinds: this.kinds,
      redirect: config.shard.redirect,
    };
  }

  private invalidate(kind: string | null, name: string | null): void {
    if (kind === null) for (const k of this.kinds.values()) k.cache.clear();
    else if (name === null) this.kinds.get(kind)?.cache.clear();
    else this.kinds.get(kind)?.cache.delete(name);
  }

  get url(): string {
    const a = this.server.address() as AddressInfo;
    return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** The runtime kind, for tests and the CLI. */
  kind(name: string): KindRuntime | undefined {
    return this.kinds.get(name);
  }

  /**
   * Applies a new configuration to the running server: buckets, weights, states, upstreams,
   * identity and cookie settings. The listener and the database stay as they were (changing
   * them needs a restart, which is logged).
   */
  reload(next: Config): void {
    if (next.listen.host !== this.config.listen.host || next.listen.port !== this.config.listen.port) {
      this.log.warn({ event: 'reload_ignored', key: 'listen' }, 'listen changed: restart to apply');
    }
    if (JSON.stringify(next.database) !== JSON.stringify(this.config.database)) {
      this.log.warn({ event: 'reload_ignored', key: 'database' }, 'database changed: restart to apply');
    }
    this.ctx.settings = this.settingsFor(next);
    this.config = next;
    this.log.info({ event: 'reloaded', config: next.file }, 'configuration reloaded');
  }

  /** Stops accepting, lets requests in flight finish (up to STOP_GRACE_MS), closes the store. */
  stop(graceMs = STOP_GRACE_MS): Promise<void> {
    this.stopping ??= (async () => {
      this.stopWatching();
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      this.server.closeIdleConnections();
      const timer = setTimeout(() => this.server.closeAllConnections(), graceMs);
      timer.unref();
      await closed;
      clearTimeout(timer);
      await this.store.close();
      this.log.info({ event: 'stopped' }, 'sharder stopped');
    })();
    return this.stopping;
  }
}
