/**
 * The tests' JupyterHub: a real node:http (or https) server on a free port that answers with its
 * name and what it received (headers as sent, body size and hash), streams server-sent events,
 * hangs when asked, and echoes websocket messages (the `ws` package). The one stand-in for a hub,
 * behind nginx (stack.ts) or the sharder's own proxy alike.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import type { HasAfter } from './context.js';

/** What the hub saw of one request, as it answers any path it has no special meaning for. */
export interface Seen {
  hub: string;
  method: string;
  url: string;
  /** The url without its query. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** The header lines as they arrived, names spelled as sent, duplicates kept: [name, value, ...]. */
  rawHeaders: string[];
  bytes: number;
  sha256: string;
}

export interface HubOptions {
  /** Serve https with this key and certificate (PEM). */
  tls?: { key: string; cert: string };
  /** Host name for the upstream URL (default 127.0.0.1). */
  host?: string;
}

export interface TestHub {
  readonly name: string;
  /** Base URL, the bucket's upstream in sharder.yml. */
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  readonly wss: WebSocketServer;
  /** Requests answered or started, websocket connections accepted. */
  readonly counts: { requests: number; websockets: number };
  /** Requests to /slow and /upload-slow whose connection closed before they were answered. */
  readonly aborted: string[];
  /** Connections open to the hub now (HTTP and websocket). */
  connections(): number;
  /** Resolves the next time a request to a path starting with `prefix` arrives. */
  arrival(prefix: string): Promise<IncomingMessage>;
  /** Lets the SSE stream started on /sse send its second event and end. */
  releaseSse(): void;
  /** Stops listening and cuts every connection (HTTP and websocket), as a crashed hub would. */
  stop(): Promise<void>;
}

const SSE_RELEASE_TIMEOUT_MS = 10_000;

/** The hub's answer to the websocket message `whoami`, as "hub:user" (the REMOTE_USER it got). */
export function whoami(message: string): string {
  const who = JSON.parse(message) as { hub: string; headers: Record<string, string | undefined> };
  return `${who.hub}:${who.headers.remote_user ?? ''}`;
}

function echo(name: string, req: IncomingMessage, res: ServerResponse): void {
  const hash = createHash('sha256');
  let bytes = 0;
  req.on('data', (d: Buffer) => {
    bytes += d.length;
    hash.update(d);
  });
  req.on('end', () => {
    const url = req.url!;
    const seen: Seen = {
      hub: name,
      method: req.method!,
      url,
      path: url.split('?')[0]!,
      headers: req.headers,
      rawHeaders: req.rawHeaders,
      bytes,
      sha256: hash.digest('hex'),
    };
    const body = JSON.stringify(seen);
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Content-Length': Buffer.byteLength(body),
      'X-Hub': name,
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
}

/** Starts a hub named `name` on a free port; stopped when `t` ends (null: by the caller, with stop()). */
export async function startHub(t: HasAfter | null, name: string, opts: HubOptions = {}): Promise<TestHub> {
  const counts = { requests: 0, websockets: 0 };
  const aborted: string[] = [];
  const waiters: Array<{ prefix: string; resolve: (r: IncomingMessage) => void }> = [];
  let sseRelease: () => void = () => {};
  let sseReleased = false;
  const sockets = new Set<Socket>();

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    counts.requests++;
    const url = req.url ?? '/';
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (url.startsWith(waiters[i]!.prefix)) waiters.splice(i, 1)[0]!.resolve(req);
    }
    const path = url.split('?')[0];
    switch (path) {
      case '/cookies':
        res.writeHead(
          200,
          [
            ['Set-Cookie', 'a=1; Path=/'],
            ['Set-Cookie', 'b=2; Path=/'],
            ['Content-Length', '2'],
            ['Connection', 'keep-alive, X-Hop'],
            ['X-Hop', 'drop me'],
            ['Keep-Alive', 'timeout=5'],
          ].flat(),
        );
        return void res.end('ok');
      case '/sse': {
        res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store' });
        res.write('data: first\n\n');
        const release = (): void => {
          clearTimeout(timer);
          if (!res.destroyed) res.end('data: second\n\n');
        };
        const timer = setTimeout(release, SSE_RELEASE_TIMEOUT_MS);
        if (sseReleased) release();
        else sseRelease = release;
        return;
      }
      case '/slow':
      case '/upload-slow':
        // Never answers: reads the body, and records when the caller gives up.
        req.resume();
        res.on('close', () => {
          if (!res.writableFinished) aborted.push(url);
        });
        return;
      case '/die-midway':
        // Promises 100000 bytes, sends 7, and dies.
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '100000' });
        res.write('partial');
        setTimeout(() => req.socket.destroy(), 50);
        return;
      case '/status': {
        const code = Number(new URL(url, 'http://x').searchParams.get('code') ?? 200);
        res.writeHead(code, { 'Content-Type': 'text/plain', 'Content-Length': String(name.length) });
        return void res.end(name);
      }
      case '/download': {
        // A generated body of ?bytes=N, streamed with back-pressure.
        let left = Number(new URL(url, 'http://x').searchParams.get('bytes') ?? 0);
        const chunk = Buffer.alloc(64 * 1024, 7);
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(left) });
        const pump = (): void => {
          while (left > 0) {
            const n = Math.min(left, chunk.length);
            left -= n;
            if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void res.once('drain', pump);
          }
          res.end();
        };
        return pump();
      }
      default:
        return echo(name, req, res);
    }
  };
  const server = opts.tls
    ? createHttpsServer({ ...opts.tls, keepAliveTimeout: 5_000 }, handler)
    : createHttpServer({ keepAliveTimeout: 5_000 }, handler);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
    counts.websockets++;
    ws.on('error', () => {});
    ws.on('message', (data, isBinary) => {
      if (!isBinary && (data as Buffer).toString() === 'whoami')
        ws.send(JSON.stringify({ hub: name, headers: req.headers }));
      else ws.send(data, { binary: isBinary });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  let stopped: Promise<void> | undefined;
  const hub: TestHub = {
    name,
    url: `${opts.tls ? 'https' : 'http'}://${opts.host ?? '127.0.0.1'}:${port}`,
    port,
    server,
    wss,
    counts,
    aborted,
    connections: () => sockets.size,
    arrival: (prefix) => new Promise((resolve) => waiters.push({ prefix, resolve })),
    releaseSse: () => {
      sseReleased = true;
      sseRelease();
    },
    stop: () => {
      stopped ??= (async () => {
        for (const c of wss.clients) c.terminate();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const s of sockets) s.destroy();
        server.closeAllConnections();
        await new Promise<void>((resolve) => wss.close(() => resolve()));
        await closed;
      })();
      return stopped;
    },
  };
  t?.after(() => hub.stop());
  return hub;
}

export function startHubs(t: HasAfter, names: readonly string[], opts: HubOptions = {}): Promise<TestHub[]> {
  return Promise.all(names.map((n) => startHub(t, n, opts)));
}
