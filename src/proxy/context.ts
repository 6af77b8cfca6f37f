/** What every pass of proxy mode works with: one object per ProxyMode, made in index.ts. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ProxyServer } from 'http-proxy-3';
import type { ProxyConfig } from '../config/types.js';
import type { MainContext } from '../http/main.js';
import type { TargetPool } from './pool.js';
import type { ProxyStats } from './stats.js';

export interface ProxyContext {
  /** The main listener's context: settings, assigner, log. */
  readonly main: MainContext;
  readonly proxy: ProxyServer;
  readonly stats: ProxyStats;
  readonly pool: TargetPool;
  /** Client sockets of open websockets: Server.close() does not end them, stop() must. */
  readonly upgraded: Set<Socket>;
  /** The proxy settings in force (replaced on reload). */
  config: ProxyConfig;
  /** http-proxy-3's error callbacks (web.ts, websocket.ts), made once, not per request. */
  readonly webError: ErrorCallback;
  readonly wsError: ErrorCallback;
}

export type ErrorCallback = (err: Error, req: IncomingMessage, res: ServerResponse | Socket) => void;
