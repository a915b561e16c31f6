import net from 'node:net';
import { portFromText } from '../targets/address.js';

/**
 * The PROXY protocol (HAProxy's specification, versions 1 and 2): the header a load balancer (HAProxy's
 * `send-proxy`/`send-proxy-v2`, nginx's `proxy_protocol on`, cloud load balancers) writes at the start
 * of a TCP connection to say whom it relays it for. Parsing is a pure function over the bytes received
 * so far, so that it can be fuzzed and the socket stage stays a thin loop.
 */

/** An IP endpoint of the relayed connection. */
export interface InetEndpoint {
  address: string;
  port: number;
}

/** The relayed connection's addresses, as a header carries them. */
export type ProxiedAddresses =
  /** TCP or UDP over IPv4 (v1 `TCP4`, v2 AF_INET) or IPv6 (v1 `TCP6`, v2 AF_INET6). */
  | { family: 4 | 6; source: InetEndpoint; destination: InetEndpoint }
  /** A Unix socket (v2 AF_UNIX): the paths, which may be empty (an unnamed client socket). */
  | { family: 'unix'; source: string; destination: string };

/** A parsed header. */
export interface ProxyHeader {
  version: 1 | 2;
  /**
   * `proxy`: the connection is relayed for a client; `local`: it is the load balancer's own (v2 LOCAL,
   * used by health checks), and the socket's own addresses stand.
   */
  command: 'proxy' | 'local';
  /** Absent for `local`, v1 `UNKNOWN` and v2 AF_UNSPEC: the socket's own addresses stand then. */
  addresses?: ProxiedAddresses | undefined;
}

/** The outcome of {@link parseProxyHeader}. */
export type ProxyParse =
  /** The bytes so far begin a header (or could): read more. */
  | { kind: 'needs-more' }
  /** A complete header of `length` bytes; any bytes after it are the relayed connection's own. */
  | { kind: 'header'; header: ProxyHeader; length: number }
  /** Not a header, or a malformed or oversized one. */
  | { kind: 'error'; reason: string };

/** v1 starts with this text. */
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** The specification's bound on a v1 line, CRLF included. */
export const V1_MAX_LENGTH = 107;
/** v2 starts with these 12 bytes (chosen to be invalid in HTTP, TLS, SSH...). */
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
/** The fixed part of a v2 header: signature, version and command, family and transport, length. */
const V2_FIXED_LENGTH = 16;
/**
 * The largest v2 header taken, in bytes. The format allows 16 + 65535, but real senders stay far below
 * (addresses, then a few TLVs: an AWS endpoint id, HAProxy's TLS facts, a unique id); a peer that announces
 * more is refused rather than buffered for.
 */
export const V2_MAX_LENGTH = 4096;
/** AF_UNIX addresses are two fixed 108-byte fields (sun_path's size), NUL-padded. */
const UNIX_PATH_LENGTH = 108;
/** Address bytes each v2 family needs before its TLVs. */
const V2_ADDRESS_LENGTH = { 4: 12, 6: 36, unix: 2 * UNIX_PATH_LENGTH } as const;

const needsMore: ProxyParse = { kind: 'needs-more' };
const error = (reason: string): ProxyParse => ({ kind: 'error', reason });

/** Whether `head` is a prefix of `prefix` or begins with it: true, false, or undefined (too short to tell). */
function startsWith(head: Buffer, prefix: Buffer): boolean | undefined {
  const compared = Math.min(head.length, prefix.length);
  if (!head.subarray(0, compared).equals(prefix.subarray(0, compared))) return false;
  return compared === prefix.length ? true : undefined;
}

/**
 * Whether a connection's first bytes are (or begin) a PROXY header of either version: undefined while
 * too few bytes have come to tell. For refusing headers from peers that are not trusted to send them.
 */
export function isProxyHeaderStart(head: Buffer): boolean | undefined {
  const v1 = startsWith(head, V1_PREFIX);
  const v2 = startsWith(head, V2_SIGNATURE);
  if (v1 === true || v2 === true) return true;
  return v1 === undefined || v2 === undefined ? undefined : false;
}

/**
 * Parses a PROXY header (v1 or v2) at the start of `bytes`. Never throws: any input gives a header with
 * its length, a request for more bytes, or an error. Bytes after the header are not looked at. The bounds
 * ({@link V1_MAX_LENGTH}, {@link V2_MAX_LENGTH}) are checked as soon as the bytes show them broken, so a
 * caller that reads until this stops answering `needs-more` buffers no more than those.
 */
export function parseProxyHeader(bytes: Buffer): ProxyParse {
  if (startsWith(bytes, V2_SIGNATURE) !== false) return parseV2(bytes);
  if (startsWith(bytes, V1_PREFIX) !== false) return parseV1(bytes);
  return error('not a PROXY protocol header');
}

/** v1: one line of text, `PROXY TCP4|TCP6 src dst srcport dstport\r\n` or `PROXY UNKNOWN ...\r\n`. */
function parseV1(bytes: Buffer): ProxyParse {
  const searched = bytes.subarray(0, V1_MAX_LENGTH);
  const lf = searched.indexOf(0x0a);
  if (lf < 0) return bytes.length >= V1_MAX_LENGTH ? error(`v1 header longer than ${V1_MAX_LENGTH} bytes`) : needsMore;
  if (lf === 0 || searched[lf - 1] !== 0x0d) return error('v1 header line does not end with CRLF');
  const line = searched.subarray(0, lf - 1).toString('latin1');
  const length = lf + 1;
  const fields = line.split(' ');
  const protocol = fields[1];
  // The specification: whatever follows UNKNOWN is to be ignored; the socket's addresses stand.
  if (protocol === 'UNKNOWN') return { kind: 'header', header: { version: 1, command: 'proxy' }, length };
  if (protocol !== 'TCP4' && protocol !== 'TCP6') return error(`v1 header with unknown protocol '${protocol ?? ''}'`);
  if (fields.length !== 6) return error('v1 header does not have the fields PROXY, protocol, 2 addresses and 2 ports');
  const [, , sourceAddress = '', destinationAddress = '', sourcePort = '', destinationPort = ''] = fields;
  const family = protocol === 'TCP4' ? 4 : 6;
  // A zone index (`%eth0`) has no meaning on another host: the specification's addresses have none.
  const valid = (address: string): boolean => net.isIP(address) === family && !address.includes('%');
  if (!valid(sourceAddress) || !valid(destinationAddress)) return error(`v1 header with malformed ${protocol} addresses`);
  const source = portFromText(sourcePort, true);
  const destination = portFromText(destinationPort, true);
  if (source === undefined || destination === undefined) return error('v1 header with malformed ports');
  return {
    kind: 'header',
    header: {
      version: 1,
      command: 'proxy',
      addresses: {
        family,
        source: { address: canonicalIp(sourceAddress, family), port: source },
        destination: { address: canonicalIp(destinationAddress, family), port: destination },
      },
    },
    length,
  };
}

/** v2: the signature, version/command, family/transport, a 16-bit length, then addresses and TLVs. */
function parseV2(bytes: Buffer): ProxyParse {
  if (bytes.length < V2_FIXED_LENGTH) return needsMore;
  const versionCommand = bytes[12]!;
  const familyTransport = bytes[13]!;
  const bodyLength = bytes.readUInt16BE(14);
  if (versionCommand >> 4 !== 2) return error(`v2 header with version ${versionCommand >> 4}`);
  const command = versionCommand & 0x0f;
  if (command > 1) return error(`v2 header with unknown command ${command}`);
  const familyCode = familyTransport >> 4;
  if (familyCode > 3 || (familyTransport & 0x0f) > 2)
    return error(`v2 header with unknown family/transport 0x${familyTransport.toString(16)}`);
  const length = V2_FIXED_LENGTH + bodyLength;
  if (length > V2_MAX_LENGTH) return error(`v2 header of ${length} bytes, more than ${V2_MAX_LENGTH}`);
  if (bytes.length < length) return needsMore;
  // LOCAL: the load balancer's own connection (a health check); whatever addresses follow are ignored.
  if (command === 0) return { kind: 'header', header: { version: 2, command: 'local' }, length };
  if (familyCode === 0) return { kind: 'header', header: { version: 2, command: 'proxy' }, length };
  const family = familyCode === 1 ? 4 : familyCode === 2 ? 6 : 'unix';
  // What follows the addresses is TLVs, skipped: nothing here needs them.
  if (bodyLength < V2_ADDRESS_LENGTH[family]) return error(`v2 header too short for its addresses (${bodyLength} bytes)`);
  const body = bytes.subarray(V2_FIXED_LENGTH, length);
  return { kind: 'header', header: { version: 2, command: 'proxy', addresses: v2Addresses(body, family) }, length };
}

/** The addresses of a v2 body long enough for them. */
function v2Addresses(body: Buffer, family: 4 | 6 | 'unix'): ProxiedAddresses {
  if (family === 'unix')
    return {
      family,
      source: unixPath(body.subarray(0, UNIX_PATH_LENGTH)),
      destination: unixPath(body.subarray(UNIX_PATH_LENGTH, 2 * UNIX_PATH_LENGTH)),
    };
  const size = family === 4 ? 4 : 16;
  const ports = 2 * size;
  return {
    family,
    source: { address: ipFromBytes(body.subarray(0, size)), port: body.readUInt16BE(ports) },
    destination: { address: ipFromBytes(body.subarray(size, ports)), port: body.readUInt16BE(ports + 2) },
  };
}

/** A NUL-padded sun_path field as text. */
function unixPath(field: Buffer): string {
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? field.length : end).toString('utf8');
}

/** An IP address's text from its 4 or 16 bytes, in the canonical form Node prints. */
function ipFromBytes(bytes: Buffer): string {
  if (bytes.length === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let at = 0; at < 16; at += 2) groups.push(bytes.readUInt16BE(at).toString(16));
  return canonicalIp(groups.join(':'), 6);
}

/** The canonical text of a valid address (`0:0::1` is `::1`), so that one address always reads the same. */
function canonicalIp(address: string, family: 4 | 6): string {
  return new net.SocketAddress({ address, family: family === 4 ? 'ipv4' : 'ipv6' }).address;
}

/** An address's 4 or 16 bytes. */
function ipToBytes(address: string, family: 4 | 6): Buffer {
  if (family === 4) return Buffer.from(address.split('.').map(Number));
  // Expand `::` and a dotted IPv4 tail into eight 16-bit groups.
  const [head = '', tail] = address.split('::');
  const groupsOf = (text: string): number[] =>
    text === ''
      ? []
      : text.split(':').flatMap((group) => {
          if (!group.includes('.')) return [Number.parseInt(group, 16)];
          const [a = 0, b = 0, c = 0, d = 0] = group.split('.').map(Number);
          return [(a << 8) | b, (c << 8) | d];
        });
  const first = groupsOf(head);
  const last = tail === undefined ? [] : groupsOf(tail);
  const groups = [...first, ...new Array<number>(8 - first.length - last.length).fill(0), ...last];
  const bytes = Buffer.alloc(16);
  for (const [index, group] of groups.entries()) bytes.writeUInt16BE(group, index * 2);
  return bytes;
}

/**
 * A v2 header with the PROXY command: TCP over IPv4 or IPv6 with `addresses` (source and destination
 * must be of the family given), or AF_UNSPEC when they are undefined (a client whose address is not
 * known, which the receiver then takes to be the connection's own). For `--target-proxy-protocol`.
 */
export function encodeProxyHeaderV2(addresses: Extract<ProxiedAddresses, { family: 4 | 6 }> | undefined): Buffer {
  const body = addresses
    ? Buffer.concat([
        ipToBytes(addresses.source.address, addresses.family),
        ipToBytes(addresses.destination.address, addresses.family),
        Buffer.from([
          addresses.source.port >> 8,
          addresses.source.port & 0xff,
          addresses.destination.port >> 8,
          addresses.destination.port & 0xff,
        ]),
      ])
    : Buffer.alloc(0);
  const fixed = Buffer.alloc(V2_FIXED_LENGTH);
  V2_SIGNATURE.copy(fixed);
  fixed[12] = 0x21; // version 2, PROXY
  fixed[13] = addresses ? (addresses.family === 4 ? 0x11 : 0x21) : 0x00; // AF_INET/AF_INET6 + STREAM, or UNSPEC
  fixed.writeUInt16BE(body.length, 14);
  return Buffer.concat([fixed, body]);
}
