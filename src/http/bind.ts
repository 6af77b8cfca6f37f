/**
 * Binding a listener to its configured address. A bind that fails because of the address
 * (in use, not on this host, a privileged port) is a configuration problem: it becomes a
 * ConfigError naming the key (`listen` or `control_listen`) and the address, so that `sharder
 * serve` says what to change and exits 2 instead of printing a stack trace.
 */
import { once } from 'node:events';
import type { Server } from 'node:net';
import type { ListenAddress } from '../config/types.js';
import { ConfigError } from '../errors.js';

export type ListenKey = 'listen' | 'control_listen' | 'metrics.listen';

/** `host:port`, with an IPv6 host in brackets, as the configuration spells it. */
const formatListen = (a: ListenAddress): string => `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;

/** Why binding `address` failed, in words an operator can act on; undefined if not the address's fault. */
function bindProblem(err: unknown, address: ListenAddress): string | undefined {
  const at = formatListen(address);
  switch ((err as NodeJS.ErrnoException | null)?.code) {
    case 'EADDRINUSE':
      return (
        `${at} is already in use (another sharder or another program listens there): stop it, or choose another ` +
        'port'
      );
    case 'EACCES':
      return `${at}: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE): choose a port from 1024`;
    case 'EADDRNOTAVAIL':
      return `${at}: ${address.host} is not an address of this host: use one of its addresses, 127.0.0.1 or 0.0.0.0`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_FAIL':
      return `${at}: the host name ${address.host} cannot be resolved: use an IP address`;
    default:
      return undefined;
  }
}

/**
 * Starts `server` listening on `address`; resolves once it listens. Rejects with a ConfigError
 * (source `file`, key `key`) when the address is at fault, else with the original error.
 */
export async function listenOn(
  server: Server,
  address: ListenAddress,
  key: ListenKey,
  file: string | null,
): Promise<void> {
  server.listen(address.port, address.host);
  try {
    await once(server, 'listening');
  } catch (err) {
    const problem = bindProblem(err, address);
    if (problem === undefined) throw err;
    throw new ConfigError([{ source: file ?? 'configuration', key, message: problem }], { cause: err });
  }
}
