/**
 * Asking a bucket's JupyterHub whether a user has a running server, and stopping it, before
 * the user is moved away: the failure operators fear is two hubs managing one user at once.
 *
 * JupyterHub REST API (https://jupyterhub.readthedocs.io/en/stable/reference/rest-api.html):
 *   GET    {url}/hub/api/users/{name}                      the user model (404: no such user)
 *   DELETE {url}/hub/api/users/{name}/server               stop the default server (202/204)
 *   DELETE {url}/hub/api/users/{name}/servers/{server}     stop a named server (202/204)
 * The token needs the read:users and read:servers scopes to see servers, and `servers` to
 * stop them. The token is sent as `Authorization: token …` and never logged or echoed.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { request, type Dispatcher } from 'undici';
import { HubApiError, ServerRunningError } from '../errors.js';
import type { HubApiConfig } from '../config/types.js';

/** How long one hub API request may take before the hub counts as unreachable. */
export const HUB_API_TIMEOUT_MS = 10_000;
/** How long a stop may take (spawners can take a while: a Kubernetes pod, a batch job). */
export const DEFAULT_STOP_TIMEOUT_MS = 120_000;
/** How often a stopping server is looked at again. */
export const STOP_POLL_MS = 1_000;

export interface HubClientOptions {
  /** undici dispatcher (tests may pass an Agent); the global one otherwise. */
  dispatcher?: Dispatcher | undefined;
  timeoutMs?: number;
}

/** The part of JupyterHub's user model the sharder reads. */
interface UserModel {
  server?: string | null;
  pending?: string | null;
  servers?: Record<string, { stopped?: boolean } | null>;
}

export class HubClient {
  constructor(
    readonly bucket: string,
    private readonly api: HubApiConfig,
    private readonly opts: HubClientOptions = {},
  ) {}

  private async call(method: 'GET' | 'DELETE', path: string): Promise<{ status: number; body: string }> {
    const url = `${this.api.url}/hub/api${path}`;
    let r: Dispatcher.ResponseData;
    try {
      r = await request(url, {
        method,
        headers: { authorization: `token ${this.api.token}`, accept: 'application/json' },
        dispatcher: this.opts.dispatcher,
        headersTimeout: this.opts.timeoutMs ?? HUB_API_TIMEOUT_MS,
        bodyTimeout: this.opts.timeoutMs ?? HUB_API_TIMEOUT_MS,
      });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new HubApiError(
        `the JupyterHub API of bucket "${this.bucket}" (${this.api.url}) did not answer: ${e.code ?? e.message}`,
        { cause: err },
      );
    }
    const body = await r.body.text().catch(() => '');
    if (r.statusCode === 401 || r.statusCode === 403) {
      throw new HubApiError(
        `the JupyterHub API of bucket "${this.bucket}" refused the token (${r.statusCode}): it needs the ` +
          'read:users, read:servers and servers scopes',
      );
    }
    return { status: r.statusCode, body };
  }

  /**
   * Names of the user's servers that are running, starting or stopping ('' is the default
   * server); empty when none or when the hub does not know the user.
   */
  async activeServers(name: string): Promise<string[]> {
    const r = await this.call('GET', `/users/${encodeURIComponent(name)}`);
    if (r.status === 404) return [];
    if (r.status !== 200)
      throw new HubApiError(`the JupyterHub API of bucket "${this.bucket}" answered ${r.status} for user "${name}"`);
    let model: UserModel;
    try {
      model = JSON.parse(r.body) as UserModel;
      if (typeof model !== 'object' || model === null) throw new Error('not an object');
    } catch {
      throw new HubApiError(
        `the JupyterHub API of bucket "${this.bucket}" answered something other than a user model for "${name}"`,
      );
    }
    if (model.servers && typeof model.servers === 'object') {
      const names = Object.entries(model.servers)
        .filter(([, s]) => s !== null && s?.stopped !== true)
        .map(([n]) => n);
      // A pending default server can precede its entry in `servers`.
      if (model.pending && !names.includes('')) names.unshift('');
      return names;
    }
    // Without the read:servers scope only `server` and `pending` are visible.
    return model.server || model.pending ? [''] : [];
  }

  async stopServer(name: string, server: string): Promise<void> {
    const path =
      server === ''
        ? `/users/${encodeURIComponent(name)}/server`
        : `/users/${encodeURIComponent(name)}/servers/${encodeURIComponent(server)}`;
    const r = await this.call('DELETE', path);
    // 202: stopping; 204: stopped; 400/404: not running (any more). Then we look again.
    if (![202, 204, 400, 404].includes(r.status)) {
      throw new HubApiError(
        `the JupyterHub API of bucket "${this.bucket}" answered ${r.status} when asked to stop the server of "${name}"`,
      );
    }
  }
}

export interface SafetyOptions {
  /** Stop running servers (and wait until stopped) instead of refusing. */
  stopServers: boolean;
  stopTimeoutMs?: number | undefined;
  pollMs?: number | undefined;
}

/**
 * Resolves when the user has no running server on the hub (stopping them first when asked):
 * 'none' when nothing ran, 'stopped' when servers were stopped. Throws ServerRunningError when
 * a server runs and may not (or could not in time) be stopped; HubApiError when the hub
 * cannot tell, because moving without knowing is exactly the risk this check exists for.
 */
export async function ensureNoServer(
  client: HubClient,
  name: string,
  opts: SafetyOptions,
): Promise<'none' | 'stopped'> {
  let active = await client.activeServers(name);
  if (active.length === 0) return 'none';
  const list = active.map((s) => (s === '' ? 'default' : `"${s}"`)).join(', ');
  if (!opts.stopServers) {
    throw new ServerRunningError(
      `"${name}" has a running server on bucket "${client.bucket}" (${list}): not moved; stop it first or pass ` +
        '--stop-servers (API: "stop_servers": true)',
    );
  }
  for (const s of active) await client.stopServer(name, s);
  const deadline = Date.now() + (opts.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS);
  for (;;) {
    active = await client.activeServers(name);
    if (active.length === 0) return 'stopped';
    if (Date.now() >= deadline) {
      throw new ServerRunningError(
        `the server of "${name}" on bucket "${client.bucket}" did not stop within ` +
          `${Math.round((opts.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS) / 1000)} s: not moved`,
      );
    }
    await sleep(opts.pollMs ?? STOP_POLL_MS);
  }
}
