import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { WebSocketServer } from 'ws';
import { createDispatcher, type FirstBytesRoute } from '../../src/first-bytes/dispatch.js';
import { createFlashPolicyRoute } from '../../src/first-bytes/flash-policy.js';
import { createPlainRefusedRoute, createTlsRoute } from '../../src/first-bytes/tls.js';
import { armDeadline, disarmDeadline } from '../../src/handshake/deadline.js';
import type { TlsContextStore } from '../../src/tls/context.js';
import { type CapturedLog, captureLog } from '../helpers/log-capture.js';

/**
 * The listening side as the proxy will wire it, in-process: accept (deadline armed), first-bytes dispatch
 * with the TLS route, and a small stand-in for the HTTP stage that answers requests with how they came
 * (`tls /path` or `plain /path`) and echoes WebSocket messages.
 */
export interface Front {
  port: number;
  log: CapturedLog;
  /** Connections whose handshake deadline expired, as handed to onExpire. */
  expired: Duplex[];
  close(): Promise<void>;
}

/** Options for {@link startFront}. */
export interface FrontOptions {
  store: TlsContextStore;
  verifyClient?: boolean;
  /** `--ssl-only`: plain connections are refused. Otherwise the Flash policy route follows TLS. */
  sslOnly?: boolean;
  handshakeTimeoutMs?: number;
  log?: CapturedLog;
}

/** Starts a {@link Front} on 127.0.0.1 with a free port. */
export async function startFront(options: FrontOptions): Promise<Front> {
  const log = options.log ?? captureLog();
  const timeoutMs = options.handshakeTimeoutMs ?? 5000;
  const expired: Duplex[] = [];
  const onExpire = (socket: Duplex): void => {
    expired.push(socket);
    socket.end('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
  };
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const web = http.createServer({ keepAlive: false });
  web.on('request', (req, res) => {
    res.setHeader('Connection', 'close');
    res.end(`${(req.socket as tls.TLSSocket).encrypted ? 'tls' : 'plain'} ${req.url}`);
  });
  web.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      disarmDeadline(socket);
      ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
    });
  });
  const httpStage = (socket: Duplex): void => void web.emit('connection', socket);
  const tlsRoute = createTlsRoute({
    store: options.store,
    next: createDispatcher({ routes: [], fallback: httpStage }),
    handshakeTimeoutMs: timeoutMs,
    onExpire,
    logger: log.logger,
    verifyClient: options.verifyClient ?? false,
  });
  const routes: FirstBytesRoute[] = [tlsRoute, options.sslOnly ? createPlainRefusedRoute(log.logger) : createFlashPolicyRoute(log.logger)];
  const dispatch = createDispatcher({ routes, fallback: httpStage });
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    armDeadline(socket, timeoutMs, onExpire);
    dispatch(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    log,
    expired,
    close: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/** What a raw TLS client got: the decrypted bytes until the close, and the error if there was one. */
export interface TlsExchange {
  data: string;
  error: string | undefined;
  /** The server certificate's SHA-256 fingerprint, when the handshake got that far. */
  fingerprint: string | undefined;
}

/**
 * Connects with TLS, sends `request` once secure (nothing when undefined), and reads until the close.
 * Never rejects: a refused handshake is an outcome to assert on.
 */
export function tlsExchange(port: number, options: tls.ConnectionOptions, request?: string): Promise<TlsExchange> {
  return new Promise((resolve) => {
    let data = '';
    let error: string | undefined;
    let fingerprint: string | undefined;
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...options });
    socket.setEncoding('utf8');
    socket.on('secureConnect', () => {
      fingerprint = socket.getPeerX509Certificate()?.fingerprint256;
      if (request !== undefined) socket.write(request);
    });
    socket.on('data', (text: string) => (data += text));
    socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code ?? err.message));
    socket.on('close', () => resolve({ data, error, fingerprint }));
  });
}

/** A minimal HTTP/1.1 request for {@link tlsExchange}. */
export function getRequest(pathname = '/'): string {
  return `GET ${pathname} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`;
}
