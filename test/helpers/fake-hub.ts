/**
 * A small JupyterHub-API-shaped server on a real socket: the user model at
 * GET /hub/api/users/{name}, and DELETE /hub/api/users/{name}/server and
 * /hub/api/users/{name}/servers/{server} that stop servers after a few looks (as a spawner
 * takes a moment to stop). Token checked as JupyterHub does (`Authorization: token …`).
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HasAfter } from './context.js';

export interface FakeServer {
  /** GETs left until a stop requested by DELETE completes; undefined while running normally. */
  stoppingFor?: number;
  /** Never stops, whatever is asked. */
  stuck?: boolean;
}

export interface FakeHub {
  url: string;
  /** name → server name ('' default) → server. A user absent from the map is unknown (404). */
  users: Map<string, Map<string, FakeServer>>;
  requests: { method: string; path: string; authorization: string | undefined }[];
  /** Answer every request with this status instead (e.g. 500). */
  failWith?: number;
  /** Leave out `servers` from user models, as JupyterHub does without the read:servers scope. */
  hideServers?: boolean;
}

export async function startFakeHub(
  t: HasAfter,
  token: string,
  opts: { stopAfterLooks?: number } = {},
): Promise<FakeHub> {
  const hub: FakeHub = { url: '', users: new Map(), requests: [] };
  const server = createServer((req, res) => {
    const path = decodeURI((req.url ?? '').split('?')[0]!);
    hub.requests.push({ method: req.method ?? '', path, authorization: req.headers.authorization });
    const send = (status: number, body?: unknown): void => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(body === undefined ? '' : JSON.stringify(body));
    };
    if (hub.failWith) return send(hub.failWith, { status: hub.failWith, message: 'failing on purpose' });
    if (req.headers.authorization !== `token ${token}`) return send(403, { status: 403, message: 'Forbidden' });
    const m = /^\/hub\/api\/users\/([^/]+)(?:\/(server)|\/servers\/([^/]+))?$/.exec(path);
    if (!m) return send(404, { status: 404, message: 'Not Found' });
    const name = decodeURIComponent(m[1]!);
    const servers = hub.users.get(name);
    if (!servers) return send(404, { status: 404, message: 'No such user' });
    if (req.method === 'GET' && m[2] === undefined && m[3] === undefined) {
      // A look: stopping servers get closer to stopped.
      const model: Record<string, unknown> = { name, kind: 'user', admin: false };
      const visible: Record<string, unknown> = {};
      for (const [sn, s] of servers) {
        if (s.stoppingFor !== undefined && !s.stuck) {
          if (s.stoppingFor <= 0) {
            servers.delete(sn);
            continue;
          }
          s.stoppingFor--;
        }
        visible[sn] = {
          name: sn,
          ready: s.stoppingFor === undefined,
          pending: s.stoppingFor === undefined ? null : 'stop',
          url: `/user/${name}/${sn}`,
        };
      }
      const dflt = visible[''] as { pending: string | null } | undefined;
      model.server = dflt ? `/user/${name}/` : null;
      model.pending = dflt?.pending ?? null;
      if (!hub.hideServers) model.servers = visible;
      return send(200, model);
    }
    if (req.method === 'DELETE') {
      const s = servers.get(m[3] !== undefined ? decodeURIComponent(m[3]) : '');
      if (!s) return send(400, { status: 400, message: 'not running' });
      s.stoppingFor = opts.stopAfterLooks ?? 2;
      return send(202);
    }
    return send(405);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  hub.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return hub;
}

/** A user with running servers (names; '' is the default server). */
export function running(hub: FakeHub, name: string, ...servers: string[]): void {
  hub.users.set(name, new Map(servers.map((s) => [s, {}])));
}
