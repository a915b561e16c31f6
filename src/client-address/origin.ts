import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { formatHostPort } from '../targets/address.js';

/** One end of a connection as far as the proxy knows it. */
export interface NetAddress {
  /** The IP address (IPv4-mapped IPv6 as plain IPv4); undefined on a Unix socket. */
  address: string | undefined;
  /** The port; undefined when not known (a forwarding header that gave none, a Unix socket). */
  port: number | undefined;
}

/**
 * Who a connection or request comes from. Without a trusted proxy in front, `client` is `peer`;
 * behind one it is what the proxy said (a PROXY protocol header, `Forwarded`, `X-Forwarded-For`).
 */
export interface ClientOrigin {
  /** The real client. */
  client: NetAddress;
  /** The socket's own peer: the client itself, or the proxy in front. */
  peer: NetAddress;
  /** Where the client connected to: this proxy's address, or the destination a PROXY header named. */
  destination: NetAddress;
}

/** Addresses that PROXY headers gave, by raw socket (the TLS socket wrapping one finds it through its parent). */
const socketOrigins = new WeakMap<object, ClientOrigin>();
/** Addresses that forwarding headers gave, by request. */
const requestOrigins = new WeakMap<IncomingMessage, ClientOrigin>();

/** What a socket's address getters return, when it has them. */
interface AddressedSocket {
  remoteAddress?: string | undefined;
  remotePort?: number | undefined;
  localAddress?: string | undefined;
  localPort?: number | undefined;
}

/**
 * The plain form of an address as people grep for it: dual-stack listeners report IPv4 clients as
 * IPv4-mapped IPv6 (`::ffff:1.2.3.4`).
 */
export function plainIp(address: string): string {
  return address.replace(/^::ffff:(?=\d+\.)/i, '');
}

function netAddress(address: string | undefined, port: number | undefined): NetAddress {
  return address ? { address: plainIp(address), port } : { address: undefined, port: undefined };
}

/** A socket's peer, as the kernel reports it (a TLS socket reports its raw socket's). */
export function peerOf(socket: Duplex): NetAddress {
  const { remoteAddress, remotePort } = socket as AddressedSocket;
  return netAddress(remoteAddress, remotePort);
}

/**
 * An address for logs and messages: `host:port`, `host` alone when the port is not known (IPv6 then
 * without brackets), or 'unix-socket' when there is no address.
 */
export function describeAddress(address: NetAddress): string {
  if (address.address === undefined) return 'unix-socket';
  return address.port === undefined ? address.address : formatHostPort(address.address, address.port);
}

/** Records what a PROXY header said about the connection on `socket` (the raw socket, before any TLS). */
export function setSocketOrigin(socket: Duplex, origin: ClientOrigin): void {
  socketOrigins.set(socket, origin);
}

/**
 * Where a connection comes from: what its PROXY header said, else its own addresses. For a TLS socket
 * that wraps the raw one, the raw one's record is found through `_parent`, Node's link from a TLSSocket
 * to the socket it wraps (set since Node 0.11; were it gone, the socket's own peer would be used).
 */
export function originOfSocket(socket: Duplex): ClientOrigin {
  const recorded = socketOrigins.get(socket) ?? socketOrigins.get((socket as { _parent?: object })._parent ?? socket);
  if (recorded) return recorded;
  const peer = peerOf(socket);
  const { localAddress, localPort } = socket as AddressedSocket;
  return { client: peer, peer, destination: netAddress(localAddress, localPort) };
}

/** Records what forwarding headers said about a request's client (see forwarded.ts). */
export function setRequestOrigin(req: IncomingMessage, origin: ClientOrigin): void {
  requestOrigins.set(req, origin);
}

/** Where a request comes from: what trusted forwarding headers said, else its connection's origin. */
export function originOf(req: IncomingMessage): ClientOrigin {
  return requestOrigins.get(req) ?? originOfSocket(req.socket);
}

/** The request's real client for log lines and plugins (see {@link describeAddress}). */
export function clientOf(req: IncomingMessage): string {
  return describeAddress(originOf(req).client);
}
