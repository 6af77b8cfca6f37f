/**
 * Small stand-ins for JupyterHub instances: real node:http servers on free ports that answer
 * every request with their own name and what they received, and echo websocket messages
 * prefixed with their name. Closed when the test ends.
 */
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import type { HasAfter } from './context.js';

/** What a hub answers: its name and the request as it arrived. */
export interface HubEcho {
  hub: string;
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  /** The header lines as they arrived, names spelled as sent, duplicates kept: [name, value, ...]. */
  rawHeaders: string[];
}

export interface TestHub {
  name: string;
  port: number;
  /** Base URL for sharder.yml. */
  upstream: string;
  server: Server;
  /** HTTP requests answered so far. */
  requests: number;
}

export interface HubOptions {
  /** Serve https with this key and certificate (PEM). */
  tls?: { key: string; cert: string };
  /** Host name for the upstream URL (default 127.0.0.1). */
  host?: string;
}

export async function startHub(t: HasAfter, name: string, opts: HubOptions = {}): Promise<TestHub> {
  const hub: TestHub = { name, port: 0, upstream: '', server: undefined as unknown as Server, requests: 0 };
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    hub.requests++;
    req.resume();
    req.on('end', () => {
      const body: HubEcho = { hub: name, method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders };
      res.writeHead(200, { 'Content-Type': 'application/json', 'X-Hub': name });
      res.end(JSON.stringify(body));
    });
  };
  const server = opts.tls ? createHttpsServer(opts.tls, handler) : createHttpServer(handler);
  hub.server = server;
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    ws.on('message', (data) => ws.send(`${name}:${String(data)}`));
    ws.send(`${name}:hello ${String(req.headers.remote_user ?? '')}`);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  hub.port = (server.address() as AddressInfo).port;
  hub.upstream = `${opts.tls ? 'https' : 'http'}://${opts.host ?? '127.0.0.1'}:${hub.port}`;
  t.after(async () => {
    for (const c of wss.clients) c.terminate();
    wss.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  return hub;
}

export function startHubs(t: HasAfter, names: readonly string[], opts: HubOptions = {}): Promise<TestHub[]> {
  return Promise.all(names.map((n) => startHub(t, n, opts)));
}
