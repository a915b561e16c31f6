import { EventEmitter } from 'node:events';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TargetSource } from '../admission/target-source.js';
import { UsageError } from '../errors.js';
import { writeHttpError } from '../handshake/http-response.js';
import { createLogger } from '../log/logger.js';
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
    | 'authPlugin'
    | 'authSource'
    | 'allowTarget'
    | 'sslTarget'
    | 'sslTargetCa'
    | 'sslTargetInsecure'
    | 'record'
    | 'heartbeat'
    | 'handshakeTimeout'
    | 'connectTimeout'
    | 'shutdownTimeout'
    | 'maxMessageSize'
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
   * Listens for `server`'s upgrade requests. A request for another path is answered 404 unless
   * another 'upgrade' listener is there to take it.
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

class Handler extends EventEmitter<EndpointEvents> implements UpgradeHandler {
  private closing: Promise<void> | undefined;

  constructor(
    private readonly endpoint: Endpoint,
    private readonly targets: TargetSource,
    private readonly path: string | undefined,
  ) {
    super();
    endpoint.on('session-open', (info) => this.emit('session-open', info));
    endpoint.on('session-close', (info) => this.emit('session-close', info));
    endpoint.on('refused', (req, err) => this.emit('refused', req, err));
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
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (this.handleUpgrade(req, socket, head) || server.listenerCount('upgrade') > 1) return;
      writeHttpError(socket, 404, `no WebSocket endpoint at ${pathOf(req)}`);
    });
    return this;
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
  const { endpoint, targets } = await openEndpoint(proxy, logger);
  return new Handler(endpoint, targets, options.path);
}

/** Only the options a handler takes, so that a JavaScript caller's listening or TLS options are not half-applied. */
function pickHandlerOptions(options: UpgradeHandlerOptions): ProxyOptions {
  const { path: _path, ...rest } = options;
  for (const name of ['listen', 'unixListen', 'inetd', 'web', 'program', 'cert', 'key', 'sslOnly', 'runOnce', 'timeout', 'idleTimeout']) {
    if ((rest as Record<string, unknown>)[name] !== undefined)
      throw new UsageError(`${name}: not an option of an upgrade handler (it belongs to the server you run)`);
  }
  return rest;
}
