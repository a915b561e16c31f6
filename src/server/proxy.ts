import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { TargetSource } from '../admission/target-source.js';
import { describeAddress, originOfSocket, peerOf } from '../client-address/origin.js';
import { createProxyProtocolStage, createUnexpectedHeaderRoute } from '../client-address/proxy-stage.js';
import { type ProxyConfig, tokenPluginName } from '../config.js';
import type { Endpoint, EndpointEvents } from '../endpoint/endpoint.js';
import { type EndpointRole, openEndpoint } from '../endpoint/open.js';
import { StartupError } from '../errors.js';
import { createDispatcher, type FirstBytesRoute } from '../first-bytes/dispatch.js';
import { createFlashPolicyRoute } from '../first-bytes/flash-policy.js';
import { createPlainRefusedRoute, createTlsRoute } from '../first-bytes/tls.js';
import { armDeadline, disarmDeadline } from '../handshake/deadline.js';
import { answerRequest, logConnectionRefusal, logRefusal, writeHttpError } from '../handshake/http-response.js';
import { createHttpStage } from '../handshake/http-stage.js';
import type { Logger } from '../log/logger.js';
import type { MetricsListener } from '../metrics/listener.js';
import type { ProxyMetrics } from '../metrics/registry.js';
import { checkCanSwitch, describeIdentity, dropPrivileges, type Identity, lookupIdentity } from '../service/privileges.js';
import { createWebHandler, type WebHandler } from '../static/handler.js';
import { withWebAuth } from '../static/web-auth.js';
import { TlsContextStore } from '../tls/context.js';
import { WrappedProgram } from '../wrap/program.js';
import { Lifecycle } from './lifecycle.js';
import { type ListenerSharing, openListener } from './listen.js';

/** The events of a {@link InProcessProxy}: those of every session, and its own start and end. */
export interface ProxyEvents extends EndpointEvents {
  /** Listening, at the address given (`host:port`, a socket path, or the inetd socket). */
  listening: [address: string];
  /** Stopped: every session closed, the listener and the target source released. */
  close: [];
}

/**
 * A proxy as `createProxy` makes it: serving in this process ({@link InProcessProxy}) or through
 * worker processes (`workers` above 1: ProxyCluster). Start it with listen(); stop it with drain() or close().
 */
export interface ProxyServer extends EventEmitter<ProxyEvents> {
  /** Resolves when the proxy has stopped and every session is closed. */
  readonly closed: Promise<void>;
  /** Where the proxy listens, once it does. */
  readonly address: string | undefined;
  /** With `metricsListen`: where the metrics, `/healthz` and `/readyz` are served (`host:port`), once they are. */
  readonly metricsAddress: string | undefined;
  /** With a wrapped program in `exit` mode: its exit status, once it has exited by itself. */
  readonly programStatus: number | undefined;
  /** Whether the proxy is draining or stopping (not ready for new sessions). */
  readonly draining: boolean;
  /**
   * Loads what the stages need, then listens.
   * @returns where it listens (for a port of 0, the chosen port).
   * @throws StartupError when something cannot be loaded or the port cannot be opened; nothing is left open then.
   */
  listen(): Promise<string>;
  /** Graceful stop: no new connections; sessions closed with 1001 after what is in flight. Resolves {@link closed}. */
  close(why?: string): Promise<void>;
  /** No new connections; open sessions go on for up to `drainTimeout` seconds, then close(). Resolves {@link closed}. */
  drain(why?: string): Promise<void>;
  /** Reads the TLS certificate and key again; new connections get the new ones. */
  reloadTls(why: string): void;
  /** Closes the listener: no new connections; open ones carry on. */
  stopAccepting(): void;
}

/** What a proxy adds to its configuration when it is one of several workers (see src/cluster). */
export interface ServeRole extends EndpointRole {
  /** How its listener shares the port with the other workers'. */
  share?: ListenerSharing | undefined;
}

/**
 * The whole proxy, as the `websockify` command runs it: a listener whose connections go through the
 * stages (first-bytes dispatch, TLS, HTTP, `--web`, upgrade, admission, session), and the lifecycle
 * (run-once, timeouts, graceful stop). It wires the stages; each lives in its own module.
 */
export class InProcessProxy extends EventEmitter<ProxyEvents> implements ProxyServer {
  /** Resolves when the proxy has stopped and every session is closed. */
  readonly closed: Promise<void>;
  private resolveClosed!: () => void;
  // Half-open allowed, as node:http's own listener does: a client that sends its request and then its FIN still
  // gets the answer.
  private readonly listener = net.createServer({ noDelay: true, allowHalfOpen: true });
  private readonly sockets = new Set<Duplex>();
  private readonly lifecycle: Lifecycle;
  private endpoint: Endpoint | undefined;
  private targets: TargetSource | undefined;
  private program: WrappedProgram | undefined;
  /** The listening port's TLS certificate, when TLS is on. */
  private tls: TlsContextStore | undefined;
  private where: string | undefined;
  /** `--metrics-listen` (or, in a worker, the primary's asking): this process's metrics. */
  private metrics: ProxyMetrics | undefined;
  private metricsListener: MetricsListener | undefined;
  private started = false;
  private stopping = false;
  private accepting = true;

  /**
   * @param config the resolved configuration (see `resolveOptions`; {@link createProxy} takes options).
   * @param logger where the proxy logs.
   * @param role in a worker process, what the primary decided for it.
   */
  constructor(
    private readonly config: ProxyConfig,
    private readonly logger: Logger,
    private readonly role: ServeRole = {},
  ) {
    super();
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.lifecycle = new Lifecycle(
      config,
      {
        stopAccepting: () => this.stopAccepting(),
        stop: (why) => void this.close(why),
        sessions: () => this.endpoint?.sessionCount ?? 0,
      },
      logger,
    );
  }

  /** Where the proxy listens, once it does. */
  get address(): string | undefined {
    return this.where;
  }

  /** With `metricsListen`: where the metrics are served, once they are. */
  get metricsAddress(): string | undefined {
    return this.metricsListener?.address;
  }

  /** With a wrapped program in `exit` mode: its exit status, once it has exited by itself. */
  get programStatus(): number | undefined {
    return this.program?.status;
  }

  /**
   * Loads what the stages need (certificate, plugins, the program to wrap), then listens.
   * @returns where it listens (for a port of 0, the chosen port).
   * @throws StartupError when something cannot be loaded or the listening socket cannot be opened;
   *   nothing is left open then.
   */
  async listen(): Promise<string> {
    const { config } = this;
    // One listener per proxy: a second call would wire every stage twice.
    if (this.started) throw new Error('listen() was called already; create another proxy to listen again');
    this.started = true;
    // Checked first, so that an unknown user leaves nothing open.
    const identity = config.runAs && lookupIdentity(config.runAs);
    if (identity) checkCanSwitch(identity);
    // Loaded only when asked for: without --metrics-listen nothing of it is loaded or counted.
    this.metrics = this.role.metrics ?? (config.metricsListen && new (await import('../metrics/registry.js')).ProxyMetrics());
    this.tls = this.openTls();
    try {
      return await this.start(identity);
    } catch (err) {
      this.listener.close();
      // An open Redis connection, a watcher or the metrics listener would keep an embedding program alive.
      await this.targets?.close?.();
      this.tls?.close();
      await this.metricsListener?.close();
      throw err;
    }
  }

  /** listen()'s steps once the certificate is loaded: the metrics listener first (not ready yet), then the rest. */
  private async start(identity: Identity | undefined): Promise<string> {
    const { config, logger, metrics } = this;
    if (config.metricsListen) {
      const { openMetricsListener } = await import('../metrics/listener.js');
      const registry = metrics!.registry;
      this.metricsListener = await openMetricsListener(
        config.metricsListen,
        {
          collect: async () => ({ contentType: registry.contentType, text: await registry.metrics() }),
          ready: () => this.where !== undefined && !this.draining,
        },
        logger,
      );
    }
    const files = config.web && createWebHandler({ ...config.web, logger });
    // A download may take longer than a handshake (and --web-auth's check is bounded by it): the web
    // server's own timeouts apply from the moment the files are served.
    const web: WebHandler | undefined =
      files &&
      ((req, res) => {
        disarmDeadline(req.socket);
        files(req, res);
      });
    const { endpoint, targets, auth, forwarded, limits } = await openEndpoint(config, logger, { ...this.role, metrics });
    this.endpoint = endpoint;
    this.targets = targets;
    this.program = targets instanceof WrappedProgram ? targets : undefined;
    this.follow(endpoint);
    const http = createHttpStage(config.maxHeaderSize, {
      upgrade: endpoint.handleUpgrade,
      request: this.requestHandler(web && config.auth?.web && auth ? withWebAuth(auth, web, logger, metrics?.refused) : web, forwarded),
      rejected: (socket, status, reason) => {
        const { client } = originOfSocket(socket);
        logConnectionRefusal(logger, client, reason, {
          status,
          kind: 'bad_request',
          counter: metrics?.refused,
          message: `refused a request from ${describeAddress(client)}: ${status} ${reason}`,
        });
      },
    });
    const dispatch = createDispatcher({ routes: this.firstBytesRoutes(http), fallback: http });
    // --proxy-protocol: a trusted peer's PROXY header is read before the first bytes are looked at.
    const { trustedProxies } = config;
    const tls = this.tls !== undefined;
    const entry =
      config.proxyProtocol && trustedProxies
        ? createProxyProtocolStage({
            trusted: trustedProxies,
            // The client it names is known from here: its connections are counted.
            next: (socket) => limits.afterProxyHeader(socket, tls, () => dispatch(socket)),
            logger,
            counter: metrics?.refused,
          })
        : dispatch;
    // Without a connection limit nothing is added to each accept.
    const admitted = limits.countsConnections ? (socket: Duplex) => limits.admitConnection(socket, tls, () => entry(socket)) : entry;
    this.listener.on('connection', (socket) => this.accept(socket, admitted));
    const { description } = await openListener(config.listen, config.preferIpv6, this.listener, this.role.share);
    // Bound (a port below 1024 needs root) and the key read: root is given up before any client is served.
    if (identity) this.becomeUser(identity);
    this.where = description;
    // After start-up the listener's errors are failed accepts (EMFILE...): worth a line, not a crash.
    this.listener.on('error', (err) => logger.warn({ event: 'listener-error', err: err.message }, `listener error: ${err.message}`));
    if (config.tls?.verifyClient && !config.tls.sslOnly) {
      // As in Python websockify, but easy to miss: the check guards TLS connections only.
      const why = this.tls ? 'plain connections are' : 'TLS is off, so every connection is';
      logger.warn(
        { event: 'verify-client-plain' },
        `--verify-client checks TLS clients only: ${why} accepted without a certificate (add --ssl-only to refuse plain ones)`,
      );
    }
    this.logListening(description);
    // The program binds the port the proxy listens on (the kernel's choice when it was 0).
    this.program?.start(
      Number(/:(\d+)$/.exec(description)?.[1]),
      (status) => void this.close(`${config.wrap?.command} exited with status ${status}`),
    );
    this.lifecycle.started();
    this.emit('listening', description);
    return description;
  }

  /**
   * Graceful stop: no new connections; each session is closed with 1001 after what is in flight; those
   * still open after the shutdown timeout are cut; then the target source (plugin, program) is released.
   * Resolves {@link closed}; calling it again returns the same promise.
   */
  async close(why = 'closed by the program'): Promise<void> {
    if (this.stopping) return this.closed;
    this.stopping = true;
    this.stopAccepting();
    this.lifecycle.dispose();
    const sessions = this.endpoint?.sessionCount ?? 0;
    this.logger.info({ event: 'stopping', reason: why, sessions }, `stopping (${why}); ${sessions} open session(s)`);
    await this.endpoint?.shutdown();
    this.tls?.close();
    await Promise.resolve(this.targets?.close?.()).catch((err: Error) =>
      this.logger.warn({ event: 'target-source-close', err: err.message }, `closing the target source: ${err.message}`),
    );
    for (const socket of this.sockets) socket.destroy();
    await this.metricsListener?.close();
    this.logger.info({ event: 'stopped' }, 'stopped');
    this.resolveClosed();
    this.emit('close');
  }

  /**
   * Drain, then stop (SIGTERM): no new connections from now on, while open sessions go on for up to
   * `drainTimeout` seconds; then (or as soon as the last one ends) the graceful {@link close}. With a
   * drain timeout of 0, the same as close(). Resolves {@link closed}.
   */
  drain(why = 'drained by the program'): Promise<void> {
    if (!this.stopping) this.lifecycle.drain(why);
    return this.closed;
  }

  /** Whether the proxy is draining or stopping (not ready for new sessions). */
  get draining(): boolean {
    return this.stopping || this.lifecycle.draining;
  }

  /** Reads the TLS certificate and key again (SIGHUP); new connections get the new ones. */
  reloadTls(why: string): void {
    if (this.tls) this.tls.reload(why);
    else this.logger.info({ event: 'tls-reload-skipped', cause: why }, `${why}: TLS is off, no certificate to reload`);
  }

  /** Gives up root for `identity` (`--user`); the wrapped program, started next, runs as it too. */
  private becomeUser(identity: Identity): void {
    dropPrivileges(identity);
    this.program?.runAs(identity);
    this.logger.info(
      { event: 'privileges-dropped', user: identity.user, uid: identity.uid, group: identity.group, gid: identity.gid },
      `running as ${describeIdentity(identity)} from now on`,
    );
  }

  /** Passes the endpoint's events on, and tells the lifecycle of sessions opening and the last one ending. */
  private follow(endpoint: Endpoint): void {
    endpoint.relayTo(this);
    endpoint.on('session-open', () => this.lifecycle.opened());
    endpoint.on('idle', () => {
      if (!this.stopping) this.lifecycle.idle();
    });
  }

  /** Plain requests (their real client found first): `--web` (its downloads outlive the handshake deadline), else 405. */
  private requestHandler(
    web: WebHandler | undefined,
    forwarded: (req: IncomingMessage) => void,
  ): (req: IncomingMessage, res: ServerResponse) => void {
    return (req, res) => {
      forwarded(req);
      // A WebSocket handshake without `Connection: Upgrade` reaches here rather than 'upgrade'.
      const isHandshake = req.headers.upgrade?.toLowerCase() === 'websocket';
      if (web && !isHandshake) return web(req, res);
      const status = isHandshake ? 400 : 405;
      const reason = isHandshake
        ? 'WebSocket handshake without Connection: Upgrade'
        : `${req.method} is not served here: this port proxies WebSocket connections`;
      logRefusal(this.logger, req, status, reason, isHandshake ? 'bad_request' : 'not_websocket', this.metrics?.refused);
      answerRequest(res, status, reason, isHandshake ? {} : { Allow: 'GET' });
    };
  }

  /** Closes the listener: no new connections; open ones carry on (a drain's first step). */
  stopAccepting(): void {
    if (!this.accepting) return;
    this.accepting = false;
    this.listener.close();
  }

  private accept(socket: net.Socket, dispatch: (socket: Duplex) => void): void {
    this.sockets.add(socket);
    if (this.logger.isLevelEnabled?.('debug') ?? true) {
      const from = describeAddress(peerOf(socket));
      this.logger.debug({ event: 'accept', client: from }, `accepted a connection from ${from}`);
    }
    socket.on('close', () => this.sockets.delete(socket));
    // Errors before a stage takes over are reported by that stage's outcome; an unheard one would crash.
    socket.on('error', (err) => this.logger.debug({ event: 'socket-error', err: err.message }, `socket error: ${err.message}`));
    armDeadline(socket, this.config.handshakeTimeout * 1000, (late) => this.handshakeExpired(late));
    dispatch(socket);
  }

  /**
   * With `--proxy-protocol` the refusal of unexpected PROXY headers, then TLS (when on), then the Flash
   * policy request, or with `--ssl-only` the refusal of anything plain.
   */
  private firstBytesRoutes(http: (socket: Duplex) => void): FirstBytesRoute[] {
    const { config } = this;
    const routes: FirstBytesRoute[] = [];
    const counter = this.metrics?.refused;
    if (config.proxyProtocol && config.trustedProxies)
      routes.push(createUnexpectedHeaderRoute(config.trustedProxies, this.logger, counter));
    if (this.tls) {
      routes.push(
        createTlsRoute({
          store: this.tls,
          next: http,
          handshakeTimeoutMs: config.handshakeTimeout * 1000,
          onExpire: (late) => this.handshakeExpired(late),
          logger: this.logger,
          verifyClient: config.tls?.verifyClient ?? false,
          handshakeDone: this.metrics && ((ok) => this.metrics?.tlsHandshake(ok)),
        }),
      );
    }
    routes.push(config.tls?.sslOnly ? createPlainRefusedRoute(this.logger, counter) : createFlashPolicyRoute(this.logger));
    return routes;
  }

  /** The start-up line: where it listens, where connections go, and whether TLS is on. */
  private logListening(description: string): void {
    const { config } = this;
    const tls = this.tls
      ? config.tls?.sslOnly
        ? 'TLS only'
        : 'TLS and plain'
      : config.tls
        ? `plain only, no TLS certificate at ${config.tls.cert}`
        : 'plain only';
    const tokens = config.tokens && tokenPluginName(config.tokens);
    this.logger.info(
      {
        event: 'listening',
        listen: description,
        target: config.target && this.targets?.describe(),
        tokens,
        tls: this.tls ? (config.tls?.sslOnly ? 'only' : 'on') : 'off',
      },
      `listening on ${description}, proxying to ${this.targets?.describe()} (${tls})`,
    );
  }

  /** A connection that did not complete its handshake in time: 408 if it sent anything, else just closed. */
  private handshakeExpired(late: Duplex): void {
    const silent = (late as net.Socket).bytesRead === 0;
    const { client } = originOfSocket(late);
    logConnectionRefusal(this.logger, client, 'handshake timeout', {
      status: silent ? undefined : 408,
      kind: 'timeout',
      counter: this.metrics?.refused,
      message: `dropped a connection from ${describeAddress(client)} that did not complete its handshake in ${this.config.handshakeTimeout} s`,
    });
    if (silent) late.destroy();
    else writeHttpError(late, 408, `handshake not complete within ${this.config.handshakeTimeout} s`);
  }

  /**
   * Loads the listening port's certificate. A missing default `self.pem` turns TLS off (the listening
   * line says so), as in Python websockify; a certificate named explicitly, or `sslOnly`, must load.
   */
  private openTls(): TlsContextStore | undefined {
    const tls = this.config.tls;
    if (!tls) return undefined;
    if (!tls.explicit && !tls.sslOnly && !fs.existsSync(tls.cert)) return undefined;
    if (tls.sslOnly && !fs.existsSync(tls.cert)) throw new StartupError(`--ssl-only: certificate file ${tls.cert} not found`);
    const { metrics } = this;
    return TlsContextStore.open(tls, this.logger, { reloaded: metrics && ((result) => metrics.tlsReloaded(result)) });
  }
}
