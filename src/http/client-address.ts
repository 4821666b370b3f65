/**
 * @module client-address
 * Who is asking, for per-address limits (logins, registrations, holds, feeds). The peer address is the
 * answer unless the peer is one of `TRUSTED_PROXIES` (a load balancer such as our nginx), in which case
 * the right-most `X-Forwarded-For` entry that is not itself a trusted proxy is. Forwarded headers from
 * anyone else are ignored: a client could otherwise send a fresh address with every request and dodge
 * every limit, or name a victim's address and have it limited.
 */
import type { IncomingMessage } from 'node:http';
import { BlockList, isIP } from 'node:net';
import type { Context } from 'hono';

/** Longest X-Forwarded-For header we read; hops beyond a handful are not believable anyway. */
const MAX_FORWARDED_HOPS = 16;

export interface TrustedProxies {
  isTrusted(address: string): boolean;
}

const NO_PROXIES: TrustedProxies = { isTrusted: () => false };

/**
 * Parses `TRUSTED_PROXIES`: comma-separated addresses or CIDR ranges, IPv4 or IPv6
 * (e.g. `127.0.0.1,10.0.0.0/8,::1`). Returns an error message naming the bad entry, if any.
 */
export function parseTrustedProxies(spec: string | undefined): TrustedProxies | string {
  if (!spec?.trim()) return NO_PROXIES;
  const list = new BlockList();
  for (const raw of spec.split(',')) {
    const entry = raw.trim();
    if (!entry) continue;
    const [address, prefix] = entry.split('/') as [string, string | undefined];
    const family = isIP(address);
    if (family === 0) return `not an IP address or CIDR range: ${entry}`;
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (prefix === undefined) {
      list.addAddress(address, type);
      continue;
    }
    const bits = Number(prefix);
    if (!/^\d{1,3}$/.test(prefix) || bits > (family === 4 ? 32 : 128)) return `bad prefix length: ${entry}`;
    list.addSubnet(address, bits, type);
  }
  return { isTrusted: (address) => checkAddress(list, address) };
}

function checkAddress(list: BlockList, address: string): boolean {
  const plain = stripMappedPrefix(address);
  const family = isIP(plain);
  if (family === 0) return false;
  return list.check(plain, family === 4 ? 'ipv4' : 'ipv6');
}

/** `::ffff:127.0.0.1` (an IPv4 peer on a dual-stack socket) is `127.0.0.1`. */
function stripMappedPrefix(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/** The client's address from the peer address and the X-Forwarded-For header(s), if any. */
export function resolveClientAddress(
  peer: string | undefined,
  forwardedFor: string | string[] | undefined,
  proxies: TrustedProxies,
): string {
  const peerAddress = peer ? stripMappedPrefix(peer) : 'unknown';
  if (!peer || !proxies.isTrusted(peerAddress) || !forwardedFor) return peerAddress;
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor)
    .split(',')
    .slice(-MAX_FORWARDED_HOPS)
    .map((hop) => stripMappedPrefix(hop.trim()));
  // Walk from the nearest hop outwards; the first one our proxies did not add is the client.
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!;
    if (isIP(hop) === 0) return peerAddress; // a garbled chain: trust only what we saw
    if (!proxies.isTrusted(hop)) return hop;
  }
  return hops[0] ?? peerAddress;
}

/** The client address of a WebSocket upgrade (or any raw Node request). */
export function clientAddressOfRequest(req: IncomingMessage, proxies: TrustedProxies): string {
  return resolveClientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], proxies);
}

interface NodeBindings {
  incoming?: IncomingMessage;
}

/** The client address of a Hono request served by @hono/node-server. */
export function clientAddressOf(c: Context, proxies: TrustedProxies): string {
  const incoming = (c.env as NodeBindings | undefined)?.incoming;
  if (!incoming) return 'unknown';
  return clientAddressOfRequest(incoming, proxies);
}
