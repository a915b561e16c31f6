import type { Duplex } from 'node:stream';
import type { FirstBytesRoute } from '../first-bytes/dispatch.js';
import { logConnectionRefusal } from '../handshake/http-response.js';
import type { Logger } from '../log/logger.js';
import type { RefusalCounter } from '../metrics/refusals.js';
import { describeAddress, type NetAddress, peerOf, setSocketOrigin } from './origin.js';
import { isProxyHeaderStart, type ProxyHeader, parseProxyHeader } from './proxy-protocol.js';
import type { TrustedProxies } from './trusted-proxies.js';

/** Options for {@link createProxyProtocolStage}. */
export interface ProxyProtocolStageOptions {
  /** The peers that must send a header; everyone else's connections go on untouched. */
  trusted: TrustedProxies;
  /** Receives each connection after its header, with the bytes that followed it unread. */
  next: (socket: Duplex) => void;
  logger: Logger;
  /** Counts the refusals (the metrics, when on). */
  counter?: RefusalCounter | undefined;
}

/** Logs a connection refused over its PROXY header (naming the peer that sent it), counts it and drops it. */
function refuse(logger: Logger, socket: Duplex, reason: string, counter: RefusalCounter | undefined): void {
  logConnectionRefusal(logger, peerOf(socket), reason, { kind: 'proxy_header', counter });
  socket.destroy();
}

/** The client a header names, or undefined when the socket's own addresses stand (LOCAL, UNKNOWN, UNSPEC). */
function relayed(header: ProxyHeader): { client: NetAddress; destination: NetAddress } | undefined {
  const { addresses } = header;
  if (header.command === 'local' || !addresses) return undefined;
  if (addresses.family === 'unix') {
    const unix: NetAddress = { address: undefined, port: undefined };
    return { client: unix, destination: unix };
  }
  return { client: addresses.source, destination: addresses.destination };
}

/**
 * `--proxy-protocol`: creates the stage before the first-bytes dispatch that reads the PROXY header (v1
 * or v2) of each connection from a trusted peer and records the client it names for the connection's
 * log lines, plugins and target (see `originOfSocket`); the bytes after it then go through the dispatch
 * as if the client had sent them (so TLS on the same port still works). A trusted peer that sends no
 * header or a malformed one is refused and logged; one that closes before sending anything (a plain TCP
 * health check) only gets a debug line. The handshake deadline armed at accept bounds the wait; the
 * parser bounds the bytes held. Connections from other peers go straight on (see
 * {@link createUnexpectedHeaderRoute} for those that send a header anyway).
 */
export function createProxyProtocolStage(options: ProxyProtocolStageOptions): (socket: Duplex) => void {
  const { trusted, next, logger, counter } = options;
  return (socket) => {
    const peer = peerOf(socket);
    // --proxy-protocol listens on TCP only: no peer address means the peer reset the connection before
    // it was read (a balancer's health check does, and it may be handed to a worker after that).
    if (peer.address === undefined) {
      logger.debug({ event: 'peer-gone' }, 'a connection was reset by its peer before it was read');
      socket.destroy();
      return;
    }
    if (!trusted.has(peer.address)) return next(socket);
    let head: Buffer = Buffer.alloc(0);
    const stop = (): void => {
      socket.removeListener('data', onData);
      socket.removeListener('end', onEnd);
    };
    const onData = (chunk: Buffer): void => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const parsed = parseProxyHeader(head);
      if (parsed.kind === 'needs-more') return;
      stop();
      if (parsed.kind === 'error') {
        const missing = isProxyHeaderStart(head) === false;
        refuse(
          logger,
          socket,
          missing ? 'no PROXY protocol header from a --trusted-proxy peer' : `bad PROXY protocol header: ${parsed.reason}`,
          counter,
        );
        return;
      }
      const names = relayed(parsed.header);
      if (names) setSocketOrigin(socket, { ...names, peer });
      if (logger.isLevelEnabled?.('debug') ?? true) {
        const from = describeAddress(peer);
        const client = names ? describeAddress(names.client) : from;
        logger.debug(
          { event: 'proxy-header', peer: from, client, version: parsed.header.version, command: parsed.header.command },
          `PROXY header (v${parsed.header.version}) from ${from}: client ${client}`,
        );
      }
      // As the dispatch hands over: paused, the rest waits in the buffer until `next` has its reader.
      socket.pause();
      if (head.length > parsed.length) socket.unshift(head.subarray(parsed.length));
      socket.resume();
      next(socket);
    };
    const onEnd = (): void => {
      stop();
      if (head.length > 0) {
        refuse(logger, socket, 'closed before the end of its PROXY protocol header', counter);
        return;
      }
      const from = describeAddress(peer);
      logger.debug({ event: 'proxy-header-none', peer: from }, `${from} closed without sending a PROXY header`);
      socket.destroy();
    };
    socket.on('data', onData);
    socket.once('end', onEnd);
  };
}

/**
 * With `--proxy-protocol`: the first-bytes route that refuses, and logs, a connection opening with a
 * PROXY header that was not expected: from a peer that is not a trusted proxy (anyone could claim any
 * address that way), or a second one after a trusted peer's header.
 */
export function createUnexpectedHeaderRoute(trusted: TrustedProxies, logger: Logger, counter?: RefusalCounter): FirstBytesRoute {
  return {
    name: 'proxy-header-refused',
    match: isProxyHeaderStart,
    handle(socket) {
      const fromTrusted = trusted.has(peerOf(socket).address);
      refuse(
        logger,
        socket,
        fromTrusted ? 'a second PROXY protocol header' : 'PROXY protocol header from a peer that is not a --trusted-proxy',
        counter,
      );
    },
  };
}
