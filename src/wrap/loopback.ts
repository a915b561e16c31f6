import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { StartupError } from '../errors.js';

/** The loopback address a wrapped program's moved socket listens on, as the shim chooses it. */
export type LoopbackHost = '127.0.0.1' | '::1';

/** The state column of /proc/net/tcp for a listening socket. */
const LISTEN = '0A';

/**
 * An address column of /proc/net/tcp{,6} (`0100007F:0016`) as bytes in network order and a port. The
 * kernel prints each 32-bit word of the address as a number in host byte order.
 */
function parseProcAddress(column: string): { bytes: Buffer; port: number } {
  const [hex = '', portHex = ''] = column.split(':');
  const bytes = Buffer.alloc(hex.length / 2);
  for (let word = 0; word < hex.length / 8; word++) {
    const value = parseInt(hex.slice(word * 8, word * 8 + 8), 16);
    if (os.endianness() === 'LE') bytes.writeUInt32LE(value, word * 4);
    else bytes.writeUInt32BE(value, word * 4);
  }
  return { bytes, port: parseInt(portHex, 16) };
}

const IPV4_LOOPBACK = Buffer.from([127, 0, 0, 1]);
const IPV6_LOOPBACK = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
const IPV4_MAPPED_LOOPBACK = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1]);

/** The local addresses of the listening sockets on `port` in one of the /proc/net/tcp tables. */
function listeningAddresses(table: string, port: number): Buffer[] {
  let text: string;
  try {
    text = fs.readFileSync(table, 'utf8');
  } catch {
    return []; // no IPv6 on this machine
  }
  const found: Buffer[] = [];
  for (const line of text.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields[3] !== LISTEN || fields[1] === undefined) continue;
    const local = parseProcAddress(fields[1]);
    if (local.port === port) found.push(local.bytes);
  }
  return found;
}

/**
 * Where a socket listens on `port` on loopback, if one does: read from the kernel's socket tables, so
 * that nothing connects to the program to find out (a program serving a single connection, such as
 * socat without `fork`, would take the probe for its client). IPv4 wins when both exist; an IPv6
 * socket bound to `::ffff:127.0.0.1` takes IPv4 connections.
 */
export function loopbackListener(port: number): LoopbackHost | undefined {
  const v4 = listeningAddresses('/proc/net/tcp', port);
  const v6 = listeningAddresses('/proc/net/tcp6', port);
  if (v4.some((a) => a.equals(IPV4_LOOPBACK)) || v6.some((a) => a.equals(IPV4_MAPPED_LOOPBACK))) return '127.0.0.1';
  if (v6.some((a) => a.equals(IPV6_LOOPBACK))) return '::1';
  return undefined;
}

/** Whether `port` can be listened on at `host` right now; a missing address family counts as yes. */
function canListen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'EADDRNOTAVAIL' || err.code === 'EAFNOSUPPORT'));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * A port free on both 127.0.0.1 and ::1, for the program's moved socket: the shim sends IPv4 binds to
 * the first and IPv6 binds to the second.
 * @throws StartupError when no such port turns up after a few tries.
 */
export async function freeLoopbackPort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const probe = net.createServer();
    const port = await new Promise<number>((resolve, reject) => {
      probe.once('error', reject);
      probe.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => resolve((probe.address() as net.AddressInfo).port));
    }).catch((err: Error) => {
      throw new StartupError(`cannot wrap a program: no free port on 127.0.0.1: ${err.message}`);
    });
    await new Promise((resolve) => probe.close(resolve));
    if (await canListen('::1', port)) return port;
  }
  throw new StartupError('cannot wrap a program: no port is free on both 127.0.0.1 and ::1');
}
