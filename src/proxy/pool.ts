/**
 * One keep-alive connection pool per hub address, made on first use. A reload that changes the
 * pool settings starts new pools; the old ones keep serving the requests in flight and their
 * idle sockets expire on their own.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { ServerOptions } from 'http-proxy-3';
import type { ProxyConfig } from '../config/types.js';

/** One hub address: the parsed target and its keep-alive connection pool. */
export interface Target {
  readonly options: ServerOptions;
  readonly agent: HttpAgent;
}

export class TargetPool {
  private targets = new Map<string, Target>();

  constructor(private config: ProxyConfig) {}

  get(upstream: string): Target {
    let t = this.targets.get(upstream);
    if (t === undefined) {
      const url = new URL(upstream);
      const keepAlive = this.config.keepAliveMs > 0;
      const opts = {
        keepAlive,
        timeout: keepAlive ? this.config.keepAliveMs : undefined,
        maxFreeSockets: this.config.maxFreeSockets,
        scheduling: 'lifo' as const,
      };
      const agent = url.protocol === 'https:' ? new HttpsAgent(opts) : new HttpAgent(opts);
      t = { options: { target: url, agent }, agent };
      this.targets.set(upstream, t);
    }
    return t;
  }

  reload(config: ProxyConfig): void {
    if (config.keepAliveMs !== this.config.keepAliveMs || config.maxFreeSockets !== this.config.maxFreeSockets)
      this.targets = new Map();
    this.config = config;
  }

  /** Closes every pooled connection. */
  close(): void {
    for (const t of this.targets.values()) t.agent.destroy();
    this.targets.clear();
  }
}
