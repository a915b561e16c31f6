import net from 'node:net';
import { UsageError } from '../errors.js';

/** A host and port as written on the command line; `host` is '' when omitted (all interfaces). */
export interface HostPort {
  host: string;
  port: number;
}

/** The highest port number TCP and UDP have. */
export const MAX_PORT = 65535;

/**
 * Whether `value` is a port number: an integer from 1 to {@link MAX_PORT}, or from 0 with `allowZero`
 * (let the kernel choose, which only a listener may ask for).
 */
export function isPort(value: unknown, allowZero = false): value is number {
  return Number.isInteger(value) && (value as number) >= (allowZero ? 0 : 1) && (value as number) <= MAX_PORT;
}

/**
 * The port that `text` writes in decimal, or undefined when it is not one (see {@link isPort}). At most
 * five digits: no sign, exponent, fraction or space, which Number() would quietly accept.
 */
export function portFromText(text: string, allowZero = false): number | undefined {
  const port = /^\d{1,5}$/.test(text) ? Number(text) : Number.NaN;
  return isPort(port, allowZero) ? port : undefined;
}

/**
 * Parses a port number; `allowZero` admits 0 (let the kernel choose), which only a listener may use.
 * @throws UsageError naming `what` when the text is not an integer in range.
 */
export function parsePort(text: string, what: string, allowZero = false): number {
  const port = portFromText(text, allowZero);
  if (port === undefined) throw new UsageError(`${what}: invalid port '${text}' (expected ${allowZero ? 0 : 1}-${MAX_PORT})`);
  return port;
}

/** `host:port` text split in two, neither part checked yet. */
export interface HostPortText {
  /** The host, without brackets; all of the text when it has no colon. */
  host: string;
  /** What follows the colon ('' after a trailing colon); undefined when nothing does. */
  port: string | undefined;
  /** Whether the host was in brackets, as an IPv6 literal followed by a port must be. */
  bracketed: boolean;
}

/**
 * Splits `host:port`, `[v6]:port` or `[v6]`. Text without brackets splits at its last colon, as Python
 * websockify's rsplit does, so `::1:5900` is host `::1` and port 5900; text without a colon is all
 * host. Whether a port is required, and what a host may be, is the caller's grammar.
 * @returns undefined when brackets are anywhere but around the whole host (`[::1`, `[::1]x`, `a]:80`).
 */
export function splitHostPort(text: string): HostPortText | undefined {
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(text);
  if (bracketed) return { host: bracketed[1]!, port: bracketed[2], bracketed: true };
  if (/[[\]]/.test(text)) return undefined;
  const colon = text.lastIndexOf(':');
  if (colon < 0) return { host: text, port: undefined, bracketed: false };
  return { host: text.slice(0, colon), port: text.slice(colon + 1), bracketed: false };
}

/**
 * Parses `[host:]port`, `[v6-literal]:port` or `v6:literal:port` (see {@link splitHostPort}). Brackets
 * are removed from the host.
 * @param requireHost when true the host part is mandatory (targets), otherwise it may be absent.
 * @throws UsageError naming `what` and saying what is wrong.
 */
export function parseHostPort(text: string, what: string, requireHost: boolean, allowZeroPort = false): HostPort {
  const split = splitHostPort(text);
  if (!split) throw new UsageError(`${what}: malformed address '${text}'`);
  if (split.bracketed && split.port === undefined) throw new UsageError(`${what}: missing port in '${text}'`);
  // Without a colon the text is a port alone: `[host:]port`.
  const host = split.port === undefined ? '' : split.host;
  if (requireHost && host === '') throw new UsageError(`${what}: expected host:port, got '${text}'`);
  return { host, port: parsePort(split.port ?? text, what, allowZeroPort) };
}

/**
 * A name's addresses with the IPv6 ones first, each family in the resolver's order: what `-6`
 * (`--prefer-ipv6`) asks for when listening on a name, connecting to one or pinning one.
 */
export function ipv6First<Address extends { family: number }>(addresses: readonly Address[]): Address[] {
  // sort() is stable: the resolver's order holds within a family.
  return [...addresses].sort((a, b) => (b.family === 6 ? 1 : 0) - (a.family === 6 ? 1 : 0));
}

/** Formats a host and port for logs and messages, bracketing IPv6 literals. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Adds an IP address or CIDR range (`10.0.0.0/8`, `fd00::/8`, `192.0.2.7`) to `list`; a bare address is
 * a /32 or /128. IPv6 zone indexes (`%eth0`) are not addresses here: they mean nothing to another host.
 * @returns false, adding nothing, when `spec` is no IP address or range (a host name, say).
 * @throws UsageError for an address with an invalid prefix length.
 */
export function addIpRange(list: net.BlockList, spec: string): boolean {
  const [address = '', prefix, extra] = spec.split('/');
  const family = net.isIP(address);
  if (family === 0 || address.includes('%') || extra !== undefined) return false;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (prefix === undefined) {
    list.addAddress(address, type);
    return true;
  }
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > (family === 4 ? 32 : 128)) throw new UsageError(`invalid prefix length '/${prefix}'`);
  list.addSubnet(address, Number(prefix), type);
  return true;
}
