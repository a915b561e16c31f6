import net from 'node:net';
import type { ClientOrigin, NetAddress } from './origin.js';
import { encodeProxyHeaderV2, type InetEndpoint } from './proxy-protocol.js';

/** An address the header can carry: an IP without its zone index, the port 0 when not known. */
function endpoint(address: NetAddress): (InetEndpoint & { family: 4 | 6 }) | undefined {
  const ip = address.address?.replace(/%.*$/, '');
  const family = ip === undefined ? 0 : net.isIP(ip);
  return ip === undefined || family === 0 ? undefined : { address: ip, port: address.port ?? 0, family: family as 4 | 6 };
}

/** An IPv4 endpoint in IPv6 form (`::ffff:1.2.3.4`), for a header whose other end is IPv6. */
function asIpv6(end: InetEndpoint & { family: 4 | 6 }): InetEndpoint {
  return end.family === 6 ? end : { address: `::ffff:${end.address}`, port: end.port };
}

/**
 * `--target-proxy-protocol`: the PROXY v2 header written first to each target, so that it learns the
 * real client as this proxy knows it: TCP over IPv4 or IPv6 from the client to the address it connected
 * to (a header has one family, so a mixed pair is sent as IPv6, the IPv4 end IPv4-mapped). The family
 * describes the client's connection, not the target's, so a Unix socket target gets the same header. A
 * client without an IP address (this proxy listens on a Unix socket) is sent as PROXY with AF_UNSPEC:
 * relayed, address unknown, so the target uses the connection's own. Never LOCAL, which would say the
 * connection is this proxy's own rather than a client's.
 */
export function targetProxyHeader(origin: ClientOrigin): Buffer {
  const source = endpoint(origin.client);
  if (!source) return encodeProxyHeaderV2(undefined);
  // Behind a Unix socket listener (a reverse proxy's X-Forwarded-For) the client is known, but where it
  // connected is not: the unspecified address says so.
  const destination = endpoint(origin.destination) ?? { address: source.family === 4 ? '0.0.0.0' : '::', port: 0, family: source.family };
  if (source.family === destination.family) return encodeProxyHeaderV2({ family: source.family, source, destination });
  return encodeProxyHeaderV2({ family: 6, source: asIpv6(source), destination: asIpv6(destination) });
}
