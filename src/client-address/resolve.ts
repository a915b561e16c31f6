import type { IncomingMessage } from 'node:http';
import type { Logger } from '../log/logger.js';
import { forwardedHops, type Hop, xForwardedForHops } from './forwarded.js';
import { describeAddress, type NetAddress, originOfSocket, setRequestOrigin } from './origin.js';
import type { TrustedProxies } from './trusted-proxies.js';

/**
 * The real client behind a chain of proxies: starting from the peer (a trusted proxy), each hop named by
 * the header, nearest first, is taken while the address before it is a trusted proxy. So the client is
 * the rightmost address that is not a trusted proxy (whatever a client wrote further left is ignored), or
 * the leftmost when every one is trusted. A hop that cannot be read ends the walk: the proxy that
 * could not name its client is then the nearest thing known to it.
 */
export function clientFromHops(peer: NetAddress, hops: readonly Hop[], trusted: TrustedProxies): NetAddress {
  let client = peer;
  for (let at = hops.length - 1; at >= 0 && trusted.has(client.address); at--) {
    const hop = hops[at];
    if (!hop) break;
    client = hop;
  }
  return client;
}

/** A header's value as one list (node:http joins repeated lines with commas already; its types allow an array). */
function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/**
 * Creates the step that finds each request's real client from `Forwarded` (preferred, RFC 7239) or
 * `X-Forwarded-For`, when the connection comes from a trusted proxy (`--trusted-proxy`), and records it
 * for the request's log lines and plugins (see `originOf`). From any other peer the headers are ignored
 * (a client could write anything there), with a debug line. Call it first thing for every request.
 */
export function createForwardedResolver(trusted: TrustedProxies | undefined, logger: Logger): (req: IncomingMessage) => void {
  return (req) => {
    const forwarded = headerText(req.headers.forwarded);
    const xForwardedFor = headerText(req.headers['x-forwarded-for']);
    if (forwarded === undefined && xForwardedFor === undefined) return;
    const origin = originOfSocket(req.socket);
    const header = forwarded !== undefined ? 'Forwarded' : 'X-Forwarded-For';
    if (!trusted?.has(origin.client.address)) {
      const from = describeAddress(origin.client);
      logger.debug({ event: 'forwarded-ignored', client: from, header }, `ignored ${header} from ${from}: not a --trusted-proxy`);
      return;
    }
    const hops = forwarded !== undefined ? forwardedHops(forwarded) : xForwardedForHops(xForwardedFor ?? '');
    setRequestOrigin(req, { ...origin, client: clientFromHops(origin.client, hops, trusted) });
  };
}
