import net from 'node:net';
import type { WebSocket } from 'ws';
import type { ListenSpec } from '../config.js';
import type { Logger } from '../log/logger.js';
import { openListener } from '../server/listen.js';
import { type ClientSummary, startSession } from './connect.js';
import { type ClientOptions, resolveClientOptions } from './options.js';

/** Options of {@link listenForClients}. */
export interface ClientListenOptions extends ClientOptions {
  /** Where to accept local connections: a TCP address (port 0: the kernel chooses) or a Unix socket file. */
  listen: Extract<ListenSpec, { kind: 'tcp' } | { kind: 'unix' }>;
  /** Serve one local connection, then stop listening and close once its session is over. Default false. */
  runOnce?: boolean | undefined;
}

/** A listener started by {@link listenForClients}. */
export interface ClientListener {
  /** Where it listens: `host:port` with the port the kernel chose, or the socket's path. */
  readonly address: string;
  /** The TCP port it listens on (undefined for a Unix socket). */
  readonly port: number | undefined;
  /** Resolves once it has stopped and every session is over (after {@link close}, or the `runOnce` session). */
  readonly closed: Promise<void>;
  /** Stops accepting; open sessions go on until they end. */
  close(): void;
  /** Drops every open session at once (both sides closed), after {@link close}. */
  destroy(): void;
}

/**
 * Listens for local TCP (or Unix socket) connections and carries each over its own WebSocket to `url`,
 * as {@link connectToWebSocket} does; the `websockify-client` command's listening mode.
 * @throws UsageError for bad options; StartupError when the address cannot be listened on.
 */
export async function listenForClients(url: string | URL, options: ClientListenOptions): Promise<ClientListener> {
  const resolved = resolveClientOptions(url, options);
  const logger: Logger | undefined = options.logger;
  const sessions = new Map<Promise<ClientSummary>, { socket: net.Socket; ws: WebSocket }>();
  let stopped = false;
  let markClosed!: () => void;
  const closed = new Promise<void>((resolve) => (markClosed = resolve));
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  const settle = (): void => {
    if (stopped && sessions.size === 0) markClosed();
  };
  const close = (): void => {
    if (stopped) return;
    stopped = true;
    server.close();
    settle();
  };
  server.on('connection', (socket: net.Socket) => {
    if (stopped) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const peer = socket.remoteAddress ? `${socket.remoteAddress}:${socket.remotePort}` : 'local socket';
    const { closed: sessionClosed, ws } = startSession(socket, resolved);
    logger?.debug({ event: 'accepted', peer }, `accepted ${peer}`);
    sessions.set(sessionClosed, { socket, ws });
    // Only now: with no session counted, stopping would count as closed at once.
    if (options.runOnce) close();
    void sessionClosed.then(() => {
      sessions.delete(sessionClosed);
      settle();
    });
  });
  const { description } = await openListener(options.listen, false, server);
  const bound = server.address();
  return {
    address: description,
    port: typeof bound === 'object' && bound ? bound.port : undefined,
    closed,
    close,
    destroy: () => {
      close();
      for (const { socket, ws } of sessions.values()) {
        ws.terminate();
        socket.destroy();
      }
    },
  };
}
