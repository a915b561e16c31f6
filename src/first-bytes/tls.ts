import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { describeAddress, originOfSocket } from '../client-address/origin.js';
import { armDeadline, disarmDeadline } from '../handshake/deadline.js';
import { logConnectionRefusal } from '../handshake/http-response.js';
import type { Logger } from '../log/logger.js';
import { logRefused } from '../log/refusal-log.js';
import type { RefusalCounter } from '../metrics/refusals.js';
import type { TlsContextStore } from '../tls/context.js';
import type { FirstBytesRoute } from './dispatch.js';

/** Options for {@link createTlsRoute}. */
export interface TlsRouteOptions {
  /** Where the current certificate comes from; each new connection uses the store's latest. */
  store: TlsContextStore;
  /** Receives each connection once secure (and its client certificate checked), decrypted. */
  next: (socket: Duplex) => void;
  /** The TLS handshake must finish within this; the rest of the handshake then gets as long again. */
  handshakeTimeoutMs: number;
  /** Answers a TLS connection whose HTTP/WebSocket handshake is late (as the plain one's). */
  onExpire: (socket: Duplex) => void;
  logger: Logger;
  /** Require a client certificate that the store's CA file (or the default trust store) vouches for. */
  verifyClient: boolean;
  /** Told of each handshake's outcome (the metrics, when on). */
  handshakeDone?: ((ok: boolean) => void) | undefined;
}

/** Whether a connection's first bytes are a TLS record (0x16, handshake) or an SSLv2-style hello (0x80). */
function isTlsHello(head: Buffer): boolean | undefined {
  if (head.length === 0) return undefined;
  return head[0] === 0x16 || head[0] === 0x80;
}

/**
 * Creates the route that terminates TLS on the listening port: it claims connections that open with a
 * TLS hello, completes the handshake with the store's current certificate, checks the client's
 * certificate when asked, and hands the decrypted socket to `next` (so wss and https take the same path
 * as ws and http). A failed handshake is logged with its reason and that connection alone is dropped.
 */
export function createTlsRoute(options: TlsRouteOptions): FirstBytesRoute {
  const { store, logger } = options;
  // Never listens: it is fed sockets, and gives Node's server-side handshake and client verification.
  const server = tls.createServer({
    ...store.secureContextOptions,
    requestCert: options.verifyClient,
    // Checked in 'secureConnection' instead: Node would drop an unverified client without saying why.
    rejectUnauthorized: false,
    handshakeTimeout: options.handshakeTimeoutMs,
  });
  let generation = store.generation;
  const fail = (socket: tls.TLSSocket, reason: string): void => {
    const from = originOfSocket(socket).client;
    const client = describeAddress(from);
    // A refusal like the others: at most a line per address per interval.
    logRefused(logger, from.address ?? client, { event: 'tls-failed', client, reason }, `TLS handshake with ${client} failed: ${reason}`);
    options.handshakeDone?.(false);
    socket.destroy();
  };
  server.on('tlsClientError', (err: NodeJS.ErrnoException & { reason?: string }, socket: tls.TLSSocket) => {
    // OpenSSL's errors carry a short `reason` ('wrong version number'); the message is its whole error line.
    const words = err.reason ?? err.message;
    fail(socket, err.code && !words.includes(err.code) ? `${words} (${err.code})` : words);
  });
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    if (options.verifyClient && !socket.authorized) {
      const why = socket.getPeerX509Certificate()
        ? `client certificate not trusted (${String(socket.authorizationError)})`
        : 'no client certificate';
      return fail(socket, why);
    }
    options.handshakeDone?.(true);
    // Errors after this are the next stage's; one nobody hears would crash the process.
    socket.on('error', (err) => logger.debug({ event: 'socket-error', err: err.message }, `TLS socket error: ${err.message}`));
    armDeadline(socket, options.handshakeTimeoutMs, options.onExpire);
    options.next(socket);
  });
  return {
    name: 'tls',
    match: isTlsHello,
    handle(socket) {
      if (generation !== store.generation) {
        server.setSecureContext(store.secureContextOptions);
        generation = store.generation;
      }
      // The TLS handshake has its own timeout (above); the rest is timed on the TLS socket once secure.
      disarmDeadline(socket);
      // TLS reads the pushed-back hello on the next tick; flowing meanwhile, the socket would drop it.
      socket.pause();
      server.emit('connection', socket);
    },
  };
}

/**
 * For `--ssl-only`: a route, placed after the TLS route, that claims every other connection, logs it and
 * closes it unanswered (as Python websockify does).
 */
export function createPlainRefusedRoute(logger: Logger, counter?: RefusalCounter): FirstBytesRoute {
  return {
    name: 'plain-refused',
    match: (head) => (head.length === 0 ? undefined : !isTlsHello(head)),
    handle(socket) {
      const reason = 'non-TLS connection received but disallowed (--ssl-only)';
      logConnectionRefusal(logger, originOfSocket(socket).client, reason, { kind: 'tls_required', counter });
      socket.destroy();
    },
  };
}
