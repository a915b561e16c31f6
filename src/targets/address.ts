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

/**
 * Parses `[host:]port`, `[v6-literal]:port` or `v6:literal:port` (split at the last colon, as Python
 * websockify does). Brackets are removed from the host.
 * @param requireHost when true the host part is mandatory (targets), otherwise it may be absent.
 */
export function parseHostPort(text: string, what: string, requireHost: boolean, allowZeroPort = false): HostPort {
  let host = '';
  let portText = text;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(text);
  if (bracketed) {
    host = bracketed[1]!;
    if (bracketed[2] === undefined) throw new UsageError(`${what}: missing port in '${text}'`);
    portText = bracketed[2];
  } else if (text.includes(':')) {
    const colon = text.lastIndexOf(':');
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
  }
  if (text.includes('[') && !bracketed) throw new UsageError(`${what}: malformed address '${text}'`);
  if (requireHost && host === '') {
    throw new UsageError(`${what}: expected host:port, got '${text}'`);
  }
  return { host, port: parsePort(portText, what, allowZeroPort) };
}

/** Formats a host and port for logs and messages, bracketing IPv6 literals. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * A connection's peer for logs: `host:port`, or 'unix-socket' when it has no address. Dual-stack
 * listeners report IPv4 clients as IPv4-mapped IPv6; the plain form is what people grep for.
 */
export function peerAddress(socket: { remoteAddress?: string | undefined; remotePort?: number | undefined }): string {
  if (!socket.remoteAddress) return 'unix-socket';
  return formatHostPort(socket.remoteAddress.replace(/^::ffff:(?=\d+\.)/, ''), socket.remotePort ?? 0);
}
