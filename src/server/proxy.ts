import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { loadAuthPlugin } from '../auth/load.js';
import type { AuthPlugin } from '../auth/plugin.js';
import type { BridgeHook } from '../bridge/bridge.js';
import { trafficHook } from '../bridge/traffic.js';
import type { ProxyConfig } from '../config.js';
import { HttpError, StartupError } from '../errors.js';
import { authRequestOf, createAdmission } from '../route/admission.js';
import { guardAdmission, TargetPolicy } from '../route/policy.js';
import { peerAddress } from '../target/address.js';
import { targetTlsContext } from '../target/connect.js';
import { describeTarget } from '../target/target.js';
import { TlsContextStore } from '../tls/context.js';
import { createPlainRefusedRoute, createTlsRoute } from '../tls/route.js';
import { loadTokenPlugin, lookupTimeoutFor } from '../tokens/load.js';
import type { TokenPlugin } from '../tokens/plugin.js';
import type { WebHandler } from '../web/web-handler.js';
import { createWebHandler } from '../web/web-handler.js';
import { armDeadline, disarmDeadline } from './deadline.js';
import { createDispatcher, type FirstBytesRoute } from './dispatch.js';
import { createFlashPolicyRoute } from './flash-policy.js';
import { answerRequest, writeHttpError } from './http-response.js';
import { createHttpStage } from './http-stage.js';
import { openListener } from './listen.js';
import { Session } from './session.js';
import { createUpgrader } from './upgrade.js';

/**
 * The proxy: owns the listener, the path of each connection through the stages (first-bytes dispatch,
 * HTTP, upgrade, session), and the lifecycle (run-once, timeouts, heartbeat, graceful stop).
 */
export class ProxyServer {
  /** Resolves when the proxy has stopped and every session is closed. */
  readonly closed: Promise<void>;
  private resolveClosed!: () => void;
  // Half-open allowed, as node:http's own listener does: a client that sends its request and then its FIN still
  // gets the answer.
  private readonly listener = net.createServer({ noDelay: true, allowHalfOpen: true });
  private readonly sockets = new Set<Duplex>();
  private readonly sessions = new Set<Session>();
  private readonly hooks: BridgeHook[];
  private nextId = 1;
  private stopping = false;
  private accepting = true;
  private timers: NodeJS.Timeout[] = [];
  private idleTimer: NodeJS.Timeout | undefined;
  /** Recordings of ended sessions still being written: the process must not exit before their 'EOF'. */
  private readonly recordings = new Set<Promise<void>>();
  /** The listening port's TLS certificate, when TLS is on. */
  private tls: TlsContextStore | undefined;
  /** Chooses each connection's target by token (`--token-plugin`). */
  private tokens: TokenPlugin | undefined;
  /** Set while a stop waits for the last session to end. */
  private drained: (() => void) | undefined;

  constructor(
    private readonly config: ProxyConfig,
    private readonly logger: Logger,
  ) {
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.hooks = config.traffic ? [trafficHook] : [];
  }

  /**
   * Starts listening and returns where (for a port of 0, the chosen port).
   * @throws StartupError when the listening socket cannot be opened.
   */
  async start(): Promise<string> {
    const { config } = this;
    this.tls = this.openTls();
    const web = config.web ? createWebHandler({ ...config.web, logger: this.logger }) : undefined;
    if (config.target?.kind === 'tcp' && config.target.tls) targetTlsContext(config.target.tls.ca);
    if (config.tokens?.targetTls) targetTlsContext(config.tokens.targetTls.ca);
    // Before the token plugin, which may hold a connection open: a bad auth source stops the start here.
    const auth = config.auth && (await loadAuthPlugin(config.auth.plugin, config.auth.source, this.logger));
    const policy = config.allowTarget && new TargetPolicy(config.allowTarget, { preferIpv6: config.preferIpv6 });
    // Before the listener: a bad token source stops the start (StartupError) with nothing bound.
    const tokens = config.tokens;
    this.tokens =
      tokens &&
      (await loadTokenPlugin(tokens.plugin, tokens.source, this.logger, {
        timeoutMs: lookupTimeoutFor(config.handshakeTimeout),
        targetTls: tokens.targetTls,
      }));
    const upgrade = createUpgrader({
      maxMessageSize: config.maxMessageSize,
      admit: guardAdmission(
        createAdmission({
          auth,
          target: config.target,
          tokens: this.tokens && tokens && { plugin: this.tokens, fromHost: tokens.fromHost },
        }),
        policy,
      ),
      accepted: (upgraded) => this.openSession(upgraded),
      refused: (req, err) => this.logRefused(req, err.status, err.message),
    });
    const http = createHttpStage(config.maxHeaderSize, {
      upgrade: (req, socket, head) =>
        this.accepting ? upgrade(req, socket, head) : writeHttpError(socket, 503, 'server is shutting down'),
      request: (req, res) => {
        // A WebSocket handshake without `Connection: Upgrade` reaches here rather than 'upgrade'.
        const isHandshake = req.headers.upgrade?.toLowerCase() === 'websocket';
        if (web && !isHandshake) return void this.serveWeb(web, config.auth?.web ? auth : undefined, req, res);
        const status = isHandshake ? 400 : 405;
        const reason = isHandshake
          ? 'WebSocket handshake without Connection: Upgrade'
          : `${req.method} is not served here: this port proxies WebSocket connections`;
        this.logRefused(req, status, reason);
        answerRequest(res, status, reason, isHandshake ? {} : { Allow: 'GET' });
      },
      rejected: (_socket, status, reason) =>
        this.logger.info({ event: 'refused', status, reason }, `refused a request: ${status} ${reason}`),
    });
    const dispatch = createDispatcher({ routes: this.firstBytesRoutes(http), fallback: http });
    this.listener.on('connection', (socket) => this.accept(socket, dispatch));
    const { description } = await openListener(config.listen, config.preferIpv6, this.listener).catch(async (err: unknown) => {
      await this.tokens?.close?.(); // an open Redis connection would keep an embedding program alive
      throw err;
    });
    // After start-up the listener's errors are failed accepts (EMFILE...): worth a line, not a crash.
    this.listener.on('error', (err) => this.logger.warn({ event: 'listener-error', err: err.message }, `listener error: ${err.message}`));
    if (config.tls?.verifyClient && !config.tls.sslOnly) {
      // As in Python websockify, but easy to miss: the check guards TLS connections only.
      const why = this.tls ? 'plain connections are' : 'TLS is off, so every connection is';
      this.logger.warn(
        { event: 'verify-client-plain' },
        `--verify-client checks TLS clients only: ${why} accepted without a certificate (add --ssl-only to refuse plain ones)`,
      );
    }
    this.logListening(description);
    this.armLifecycleTimers();
    return description;
  }

  /** Serves a `--web` request, with `--web-auth` only once the auth plugin lets it pass (refusals answered and logged). */
  private async serveWeb(web: WebHandler, auth: AuthPlugin | undefined, req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await auth?.authenticate(authRequestOf(req));
    } catch (err) {
      const refusal =
        err instanceof HttpError ? err : new HttpError(500, `internal error in the auth plugin: ${(err as Error)?.message ?? String(err)}`);
      this.logRefused(req, refusal.status, refusal.message);
      if (res.headersSent || !req.socket.writable) return; // the handshake deadline answered first
      answerRequest(res, refusal.status, refusal.message, refusal.headers);
      return;
    }
    // A download may take longer than a handshake; the web server's own timeouts apply from here.
    disarmDeadline(req.socket);
    web(req, res);
  }

  /**
   * Graceful stop: no new connections; each session is closed with 1001 after what is in flight; those
   * still open after the shutdown timeout are cut. Resolves {@link closed}.
   */
  async stop(why: string): Promise<void> {
    if (this.stopping) return this.closed;
    this.stopping = true;
    this.stopAccepting();
    this.logger.info(
      { event: 'stopping', reason: why, sessions: this.sessions.size },
      `stopping (${why}); ${this.sessions.size} open session(s)`,
    );
    for (const timer of this.timers) clearInterval(timer);
    clearTimeout(this.idleTimer);
    for (const session of this.sessions) session.shutdown();
    const deadline = setTimeout(() => {
      for (const session of this.sessions) session.terminate('shutdown timeout');
    }, this.config.shutdownTimeout * 1000);
    if (this.sessions.size > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    // A stalled disk must not hold the exit past the shutdown timeout.
    if (this.recordings.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(this.recordings),
        new Promise((resolve) => (timer = setTimeout(resolve, this.config.shutdownTimeout * 1000))),
      ]);
      clearTimeout(timer);
    }
    clearTimeout(deadline);
    this.tls?.close();
    await Promise.resolve(this.tokens?.close?.()).catch((err: Error) =>
      this.logger.warn({ event: 'token-plugin-close', err: err.message }, `closing the token plugin: ${err.message}`),
    );
    for (const socket of this.sockets) socket.destroy();
    this.logger.info({ event: 'stopped' }, 'stopped');
    this.resolveClosed();
  }

  private stopAccepting(): void {
    if (!this.accepting) return;
    this.accepting = false;
    this.listener.close();
  }

  private accept(socket: net.Socket, dispatch: (socket: Duplex) => void): void {
    this.sockets.add(socket);
    if (this.logger.isLevelEnabled('debug')) {
      const from = peerAddress(socket);
      this.logger.debug({ event: 'accept', client: from }, `accepted a connection from ${from}`);
    }
    socket.on('close', () => this.sockets.delete(socket));
    // Errors before a stage takes over are reported by that stage's outcome; an unheard one would crash.
    socket.on('error', (err) => this.logger.debug({ event: 'socket-error', err: err.message }, `socket error: ${err.message}`));
    armDeadline(socket, this.config.handshakeTimeout * 1000, (late) => this.handshakeExpired(late));
    dispatch(socket);
  }

  /** TLS (when on) first, then the Flash policy request, or with `--ssl-only` the refusal of anything plain. */
  private firstBytesRoutes(http: (socket: Duplex) => void): FirstBytesRoute[] {
    const { config } = this;
    const routes: FirstBytesRoute[] = [];
    if (this.tls) {
      routes.push(
        createTlsRoute({
          store: this.tls,
          next: http,
          handshakeTimeoutMs: config.handshakeTimeout * 1000,
          onExpire: (late) => this.handshakeExpired(late),
          logger: this.logger,
          verifyClient: config.tls?.verifyClient ?? false,
        }),
      );
    }
    routes.push(config.tls?.sslOnly ? createPlainRefusedRoute(this.logger) : createFlashPolicyRoute(this.logger));
    return routes;
  }

  /** The start-up line: where it listens, where connections go, and whether TLS is on. */
  private logListening(description: string): void {
    const { config } = this;
    const tokens = config.tokens;
    const proxying = tokens
      ? `the target each token names (${tokens.plugin}, token from ${tokens.fromHost ? 'the Host header' : '?token='})`
      : (config.targetLabel ?? (config.target ? describeTarget(config.target) : 'no target'));
    const tls = this.tls
      ? config.tls?.sslOnly
        ? 'TLS only'
        : 'TLS and plain'
      : config.tls
        ? `plain only, no TLS certificate at ${config.tls.cert}`
        : 'plain only';
    this.logger.info(
      {
        event: 'listening',
        listen: description,
        target: config.target && describeTarget(config.target),
        tokens: tokens?.plugin,
        tls: this.tls ? (config.tls?.sslOnly ? 'only' : 'on') : 'off',
      },
      `listening on ${description}, proxying to ${proxying} (${tls})`,
    );
  }

  /** One log line per request refused with an HTTP status. */
  private logRefused(req: IncomingMessage, status: number, reason: string): void {
    this.logger.info({ event: 'refused', status, reason, path: req.url }, `refused ${req.method} ${req.url}: ${status} ${reason}`);
  }

  /** A connection that did not complete its handshake in time: 408 if it sent anything, else just closed. */
  private handshakeExpired(late: Duplex): void {
    const silent = (late as net.Socket).bytesRead === 0;
    this.logger.info(
      { event: 'refused', status: silent ? undefined : 408, reason: 'handshake timeout' },
      `dropped a connection that did not complete its handshake in ${this.config.handshakeTimeout} s`,
    );
    if (silent) late.destroy();
    else writeHttpError(late, 408, `handshake not complete within ${this.config.handshakeTimeout} s`);
  }

  /**
   * Loads the listening port's certificate. A missing default `self.pem` turns TLS off (the listening
   * line says so), as in Python websockify; a certificate named on the command line, or `--ssl-only`,
   * must load.
   */
  private openTls(): TlsContextStore | undefined {
    const tls = this.config.tls;
    if (!tls) return undefined;
    // The listening line says which it is.
    if (!tls.explicit && !tls.sslOnly && !fs.existsSync(tls.cert)) return undefined;
    if (tls.sslOnly && !fs.existsSync(tls.cert)) throw new StartupError(`--ssl-only: certificate file ${tls.cert} not found`);
    return TlsContextStore.open(tls, this.logger);
  }

  /** Reads the TLS certificate and key again (SIGHUP); new connections get the new ones. */
  reloadTls(why: string): void {
    if (this.tls) this.tls.reload(why);
    else this.logger.info({ event: 'tls-reload-skipped', cause: why }, `${why}: TLS is off, no certificate to reload`);
  }

  private openSession(upgraded: ConstructorParameters<typeof Session>[1]): void {
    if (this.config.runOnce) this.stopAccepting();
    clearTimeout(this.idleTimer);
    const session = new Session(this.nextId++, upgraded, {
      connect: { preferIpv6: this.config.preferIpv6, timeoutMs: this.config.connectTimeout * 1000 },
      logger: this.logger,
      hooks: this.hooks,
      record: this.config.record,
      ended: (ended) => this.sessionEnded(ended),
    });
    this.sessions.add(session);
    void session.start();
  }

  private sessionEnded(session: Session): void {
    this.sessions.delete(session);
    const recording = session.recorder?.finished;
    if (recording) {
      this.recordings.add(recording);
      void recording.then(() => this.recordings.delete(recording));
    }
    if (this.sessions.size > 0) return;
    if (this.stopping) {
      this.drained?.();
      return;
    }
    if (this.config.runOnce) void this.stop('--run-once: the session ended');
    else if (!this.accepting) void this.stop('--timeout reached and no session is open');
    else this.armIdleTimer();
  }

  private armIdleTimer(): void {
    if (this.config.idleTimeout <= 0) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(
      () => void this.stop(`--idle-timeout: no session for ${this.config.idleTimeout} s`),
      this.config.idleTimeout * 1000,
    );
  }

  private armLifecycleTimers(): void {
    const { timeout, heartbeat } = this.config;
    this.armIdleTimer();
    if (timeout > 0) {
      this.timers.push(
        setTimeout(() => {
          this.logger.info({ event: 'timeout' }, `--timeout ${timeout} s reached: no new connections`);
          this.stopAccepting();
          if (this.sessions.size === 0) void this.stop('--timeout reached and no session is open');
        }, timeout * 1000),
      );
    }
    if (heartbeat > 0) {
      this.timers.push(
        setInterval(() => {
          for (const session of this.sessions) {
            const bridge = session.bridge;
            if (!bridge) continue;
            if (!bridge.alive) {
              this.logger.info(
                { event: 'heartbeat-timeout', conn: session.id },
                `conn ${session.id}: no pong within ${heartbeat} s, dropping`,
              );
              bridge.terminate('Heartbeat timeout');
              continue;
            }
            bridge.alive = false;
            bridge.ws.ping();
          }
        }, heartbeat * 1000),
      );
    }
  }
}
