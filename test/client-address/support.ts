// Shared pieces of the client-address tests: clients that connect from a chosen loopback address and
// may send bytes of their own (a PROXY header) before the WebSocket handshake, and a target that reads
// the PROXY header the proxy sends it.
import net from 'node:net';
import tls from 'node:tls';
import type { ClientOptions, WebSocket } from 'ws';
import { type ProxyHeader, parseProxyHeader } from '../../src/client-address/proxy-protocol.js';
import { startServer, type TestServer } from '../helpers/targets.js';
import { openClient } from '../helpers/ws-client.js';

/** A second loopback address (Linux routes all of 127.0.0.0/8 to lo): a peer that is not 127.0.0.1. */
export const OTHER_PEER = '127.0.0.2';

/** A PROXY v1 line for TCP4. */
export function proxyV1(source: string, sourcePort: number, destination = '127.0.0.1', destinationPort = 6080): Buffer {
  return Buffer.from(`PROXY TCP4 ${source} ${destination} ${sourcePort} ${destinationPort}\r\n`);
}

/** A PROXY v2 LOCAL header, as HAProxy's health checks send it. */
export const PROXY_V2_LOCAL = Buffer.from('0d0a0d0a000d0a515549540a20000000', 'hex');

/** How {@link openVia} connects. */
export interface ViaOptions {
  /** Bytes written first, before TLS and the handshake (a PROXY header). */
  preamble?: Buffer;
  /** The local address to connect from (default 127.0.0.1). */
  from?: string;
  /** wss: TLS over the raw connection, trusting this CA, checking the name localhost. */
  ca?: Buffer;
  /** Extra ws client options (headers...). */
  options?: ClientOptions;
}

/** Opens a WebSocket to 127.0.0.1:`port`, from `from`, with `preamble` on the raw connection first. */
export function openVia(port: number, path: string, via: ViaOptions = {}): Promise<WebSocket> {
  const scheme = via.ca ? 'wss' : 'ws';
  return openClient(`${scheme}://localhost:${port}${path}`, 'binary', {
    ...via.options,
    createConnection: () => {
      const raw = net.connect({ host: '127.0.0.1', port, localAddress: via.from ?? '127.0.0.1' });
      if (via.preamble) raw.write(via.preamble);
      return via.ca ? tls.connect({ socket: raw, ca: via.ca, servername: 'localhost' }) : raw;
    },
  });
}

/**
 * A target's connection handler that reads a PROXY header first and adds it to `headers`, then hands
 * the connection, paused with the bytes after the header unread, to `next` (default: echo). A
 * connection without a valid header is dropped.
 */
export function headerThen(
  headers: ProxyHeader[],
  next: (socket: net.Socket) => void = (socket) => socket.pipe(socket),
): (socket: net.Socket) => void {
  return (socket) => {
    let head: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const parsed = parseProxyHeader(head);
      if (parsed.kind === 'needs-more') return;
      socket.removeListener('data', onData);
      if (parsed.kind === 'error') {
        socket.destroy();
        return;
      }
      headers.push(parsed.header);
      socket.pause();
      socket.unshift(head.subarray(parsed.length));
      next(socket);
    };
    socket.on('data', onData);
  };
}

/** A TCP target on 127.0.0.1 that reads a PROXY header, then echoes (see {@link headerThen}). */
export async function startHeaderEchoTarget(): Promise<TestServer & { headers: ProxyHeader[] }> {
  const headers: ProxyHeader[] = [];
  return Object.assign(await startServer(headerThen(headers)), { headers });
}
