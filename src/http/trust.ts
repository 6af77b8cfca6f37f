/**
 * Who a peer is: the one place that decides which TCP peers are trusted proxies (they may set
 * the identity and the kind, and their X-Request-Id is kept) and which peers count as one
 * source for the control listener's failure limit. Pure functions of the peer address, so
 * they are tested with plain strings; `socketTrusted` caches the answer per connection.
 *
 * A peer whose address is unknown is untrusted. Node reports no `remoteAddress` for a socket
 * that was reset before the request was handled (and the sharder listens on TCP only), so
 * "no address" must never mean "local".
 */
import type { Socket } from 'node:net';
import { BlockList, isIPv4, isIPv6 } from 'node:net';

/** The peers that may set the identity and the kind (identity.trusted_proxies). */
export function trustedProxies(cidrs: readonly string[]): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const [addr, prefix] = cidr.split('/') as [string, string | undefined];
    const type = isIPv4(addr) ? 'ipv4' : 'ipv6';
    list.addSubnet(addr, prefix === undefined ? (type === 'ipv4' ? 32 : 128) : Number(prefix), type);
  }
  return list;
}

/** An IPv4 address written as IPv6 (`::ffff:10.0.0.1`), as a dual-stack socket reports it. */
function unmapped(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/** Whether a peer address is in the list. Unknown (undefined, empty, unparsable) is never trusted. */
export function isTrusted(list: BlockList, address: string | undefined): boolean {
  if (address === undefined) return false;
  const a = unmapped(address);
  if (isIPv4(a)) return list.check(a, 'ipv4');
  if (isIPv6(a)) return list.check(a, 'ipv6');
  return false;
}

const LOOPBACK_V4 = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

/** Whether a peer address is loopback (127.0.0.0/8, ::1, or either IPv4-mapped). Unknown is not. */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  const a = unmapped(address);
  return a === '::1' || (LOOPBACK_V4.test(a) && isIPv4(a));
}

/**
 * The source a peer's failures are counted under: every loopback address is one source (moving
 * from 127.0.0.1 to 127.0.0.2 is the same host), an IPv4 address is its own, an IPv6 address
 * counts by its /64 (one host usually holds a whole /64), and unknown peers share one source.
 */
export function sourceOf(address: string | undefined): string {
  if (address === undefined) return 'unknown';
  const a = unmapped(address);
  if (isLoopback(a)) return 'loopback';
  if (isIPv4(a)) return a;
  if (!isIPv6(a)) return 'unknown';
  return `${expandIPv6(a).slice(0, 4).join(':')}::/64`;
}

/** The eight 16-bit groups of an IPv6 address (zone and embedded IPv4 tails handled). */
function expandIPv6(address: string): string[] {
  let a = address.split('%')[0]!.toLowerCase();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (v4) {
    const [b0, b1, b2, b3] = v4[1]!.split('.').map(Number) as [number, number, number, number];
    a = `${a.slice(0, -v4[1]!.length)}${((b0 << 8) | b1).toString(16)}:${((b2 << 8) | b3).toString(16)}`;
  }
  const [head, tail] = a.includes('::') ? (a.split('::') as [string, string]) : [a, undefined];
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const fill = tail === undefined ? [] : Array<string>(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((g) => g.replace(/^0+(?=.)/, ''));
}

const kTrust = Symbol('sharder.trust');
type TrustSocket = Socket & { [kTrust]?: { list: BlockList; trusted: boolean } };

/** Trust is a property of the connection: computed once per socket and trusted-proxy list. */
export function socketTrusted(socket: Socket, list: BlockList): boolean {
  const s = socket as TrustSocket;
  const t = s[kTrust];
  if (t !== undefined && t.list === list) return t.trusted;
  const trusted = isTrusted(list, socket.remoteAddress);
  s[kTrust] = { list, trusted };
  return trusted;
}
