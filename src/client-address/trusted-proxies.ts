import net from 'node:net';
import { UsageError } from '../errors.js';
import { addIpRange } from '../targets/address.js';
import { plainIp } from './origin.js';

/**
 * `--trusted-proxy`: the peers whose word about the real client is taken (PROXY headers, `Forwarded`,
 * `X-Forwarded-For`). Anyone else could claim any address, so from them such claims are ignored.
 */
export class TrustedProxies {
  private readonly list = new net.BlockList();

  /**
   * @param ranges IP addresses and CIDR ranges (`10.0.0.0/8`, `fd00::/8`, `192.0.2.7`); a bare address is
   *   a /32 or /128.
   * @throws UsageError saying which entry is malformed.
   */
  constructor(ranges: readonly string[]) {
    for (const range of ranges) this.add(range);
  }

  /**
   * Whether `address` is a trusted proxy. IPv4-mapped IPv6 (`::ffff:10.1.2.3`, as dual-stack sockets
   * report IPv4 peers) matches IPv4 ranges; a zone index is ignored; no address (a Unix socket peer) is
   * never trusted, since no range can name it.
   */
  has(address: string | undefined): boolean {
    if (address === undefined) return false;
    const plain = plainIp(address.replace(/%.*$/, ''));
    const family = net.isIP(plain);
    return family !== 0 && this.list.check(plain, family === 4 ? 'ipv4' : 'ipv6');
  }

  private add(range: string): void {
    if (!addIpRange(this.list, range)) throw new UsageError(`'${range}' is not an IP address or CIDR range`);
  }
}
