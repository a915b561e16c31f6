import { EventEmitter } from 'node:events';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TargetSource } from '../admission/target-source.js';
import { HttpError, UsageError } from '../errors.js';
import { logRefusal, writeHttpError } from '../handshake/http-response.js';
import { createLogger, type Logger } from '../log/logger.js';
import { type ProxyOptions, resolveOptions } from '../options.js';
import type { Endpoint, EndpointEvents } from './endpoint.js';
import { openEndpoint } from './open.js';

/**
 * Options of {@link createUpgradeHandler}: the proxy's options about admission, targets, sessions and
 * logging (same names, meanings and defaults), and the path to answer.
 */
export interface UpgradeHandlerOptions
  extends Pick<
    ProxyOptions,
    | 'target'
    | 'unixTarget'
    | 'tokenPlugin'
    | 'tokenSource'
    | 'hostToken'
    | 'tokenHeader'
    | 'tokenCookie'
    | 'tokenCache'
    | 'tokenCacheEntries'
    | 'authPlugin'
    | 'authSource'
    | 'allowTarget'
    | 'trustedProxy'
    | 'targetProxyProtocol'
    | 'sslTarget'
    | 'sslTargetCa'
    | 'sslTargetInsecure'
    | 'record'
    | 'recordMaxBytes'
    | 'heartbeat'
    | 'handshakeTimeout'
    | 'connectTimeout'
    | 'shutdownTimeout'
    | 'maxMessageSize'
    | 'maxUnfinished'
    | 'maxConnections'
    | 'maxConnectionsPerIp'
    | 'maxHandshakeRate'
    | 'maxSessionDuration'
    | 'banAfter'
    | 'banTime'
    | 'allowOrigin'
    | 'refusalLogInterval'
    | 'traffic'
    | 'preferIpv6'
    | 'verbose'
    | 'logFile'
    | 'syslog'
    | 'legacySyslog'
    | 'logFormat'
    | 'logger'
  > {
  /** Take only upgrade requests for this path (the query is not compared). Default: every path. */
  path?: string | undefined;
}

/** A WebSocket-to-TCP endpoint on a server the caller runs. Emits the proxy's session events. */
export interface UpgradeHandler extends EventEmitter<EndpointEvents> {
  /**
   * Handles one upgrade request (the arguments of node:http's 'upgrade' event). A request for another
   * path is left alone and false returned, so that other handlers may take it.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /**
   * Takes `server`'s upgrade requests for this handler's path. Handlers attached to one server share
   * one 'upgrade' listener, so several paths may be attached; a request for none of them is answered
   * 404 unless the server has an 'upgrade' listener of its own to take it. Attaching twice is a no-op.
   */
  attach(server: Server): this;
  /** Open sessions. */
  readonly sessionCount: number;
  /**
   * Graceful stop: new handshakes get 503, sessions are closed with 1001 after what is in flight (cut
   * after `shutdownTimeout`), then the token plugin is released. The server is the caller's to close.
   */
  close(): Promise<void>;
}

/** The handlers attached to each server, behind the one 'upgrade' listener they share. */
const attached = new WeakMap<Server, Set<Handler>>();

class Handler extends EventEmitter<EndpointEvents> implements UpgradeHandler {
  private closing: Promise<void> | undefined;

  constructor(
    private readonly endpoint: Endpoint,
    private readonly targets: TargetSource,
    private readonly path: string | undefined,
    private readonly logger: Logger,
    /** Finds a request's real client from trusted forwarding headers (the endpoint does for its own requests). */
    private readonly forwarded: (req: IncomingMessage) => void,
  ) {
    super();
    endpoint.relayTo(this);
  }

  get sessionCount(): number {
    return this.endpoint.sessionCount;
  }

  handleUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): boolean => {
    if (this.path !== undefined && pathOf(req) !== this.path) return false;
    this.endpoint.handleUpgrade(req, socket, head);
    return true;
  };

  attach(server: Server): this {
    let handlers = attached.get(server);
    if (!handlers) {
      const those = new Set<Handler>();
      handlers = those;
      attached.set(server, those);
      server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        for (const handler of those) if (handler.handleUpgrade(req, socket, head)) return;
        if (server.listenerCount('upgrade') > 1) return; // the server's own listener takes it
        const [first] = those;
        first?.refuseUnknownPath(req, socket);
      });
    }
    handlers.add(this);
    return this;
  }

  /** @internal No attached handler's path: 404, logged and emitted (by the first handler attached). */
  refuseUnknownPath(req: IncomingMessage, socket: Duplex): void {
    this.forwarded(req);
    const error = new HttpError(404, `no WebSocket endpoint at ${pathOf(req)}`);
    writeHttpError(socket, error.status, error.message);
    logRefusal(this.logger, req, error.status, error.message);
    this.emit('refused', req, error);
  }

  close(): Promise<void> {
    this.closing ??= this.endpoint.shutdown().then(() => this.targets.close?.());
    return this.closing;
  }
}

/** A request's path without its query. */
function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const query = url.indexOf('?');
  return query < 0 ? url : url.slice(0, query);
}

/**
 * Creates an upgrade handler for a server you run (plain `http`/`https`, Express, Fastify): each
 * upgrade request for `path` gets the proxy's admission (auth plugin, token plugin, `allowTarget`),
 * its bridge, close semantics, recording and logging. TLS, timeouts of the request head and static
 * files are the server's own.
 * @throws UsageError for malformed or contradicting options; StartupError when a plugin, a CA file
 *   or the token source cannot be loaded.
 */
export async function createUpgradeHandler(options: UpgradeHandlerOptions): Promise<UpgradeHandler> {
  // The listening options are the caller's server's: resolved with a placeholder nothing opens.
  const { proxy, log } = resolveOptions({ ...pickHandlerOptions(options), listen: 0 });
  const logger = options.logger ?? createLogger(log);
  const { endpoint, targets, forwarded } = await openEndpoint(proxy, logger);
  return new Handler(endpoint, targets, options.path, logger, forwarded);
}

/** Only the options a handler takes, so that a JavaScript caller's listening or TLS options are not half-applied. */
function pickHandlerOptions(options: UpgradeHandlerOptions): ProxyOptions {
  const { path, ...rest } = options;
  if (path !== undefined && !path.startsWith('/')) throw new UsageError(`path: expected a path beginning with '/', got '${path}'`);
  // A PROXY header comes before the HTTP request, so only the server that accepts the connection can read it.
  if ((rest as ProxyOptions).proxyProtocol !== undefined)
    throw new UsageError(
      'proxyProtocol: not an option of an upgrade handler (the PROXY header precedes the request: the server you run must read it); trustedProxy applies to X-Forwarded-For and Forwarded',
    );
  for (const name of [
    'listen',
    'unixListen',
    'inetd',
    'listenFd',
    'user',
    'group',
    'web',
    'program',
    'cert',
    'key',
    'keyPasswordFile',
    'sslOnly',
    'runOnce',
    'timeout',
    'idleTimeout',
    'metricsListen',
  ]) {
    if ((rest as Record<string, unknown>)[name] !== undefined)
      throw new UsageError(`${name}: not an option of an upgrade handler (it belongs to the server you run)`);
  }
  return rest;
}
