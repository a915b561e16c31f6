import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Admission } from '../admission/admission.js';
import type { BridgeHook } from '../bridge/bridge.js';
import { startHeartbeat } from '../bridge/heartbeat.js';
import { UnfinishedMessages } from '../bridge/unfinished-messages.js';
import type { HttpError } from '../errors.js';
import { logRefusal, writeHttpError } from '../handshake/http-response.js';
import { createUpgrader } from '../handshake/upgrade.js';
import { SessionClock } from '../limits/session-duration.js';
import type { Logger } from '../log/logger.js';
import type { OpenTraffic, ProxyMetrics } from '../metrics/registry.js';
import type { ConnectOptions } from '../targets/connect.js';
import { Session, type SessionEndInfo, type SessionInfo } from './session.js';

/** What an {@link Endpoint} is made of. */
export interface EndpointOptions {
  /** The route stage: auth, the target, `--allow-target`. */
  admit: Admission;
  /** Largest message accepted from a client, in bytes (close 1009 beyond). */
  maxMessageSize: number;
  /** Bytes of unfinished client messages held at once over all sessions (1009 for the largest beyond). */
  maxUnfinished: number;
  /** How sessions connect their target. */
  connect: ConnectOptions;
  logger: Logger;
  /** Observers of every session's traffic (`--traffic`). */
  hooks: readonly BridgeHook[];
  /** `--record FILE`: each session is recorded to `FILE.<id>`. */
  record?: string | undefined;
  /** `--record-max-bytes`: the cap on one session's recorded message lines. */
  recordMaxBytes?: number | undefined;
  /** Ping clients every N seconds, dropping those that do not answer; 0 = off. */
  heartbeat: number;
  /** Seconds a graceful shutdown gives sessions (and recordings) before they are cut. */
  shutdownTimeout: number;
  /** Finds each request's real client from trusted forwarding headers, before anything logs or checks it. */
  forwarded: (req: IncomingMessage) => void;
  /** Begin each target connection with a PROXY v2 header naming the client (`--target-proxy-protocol`). */
  targetProxyProtocol: boolean;
  /** Seconds a session may last before it is closed with 1008 (`--max-session-duration`); 0 = no limit. */
  maxSessionDuration?: number | undefined;
  /** Session numbers: the first, and the step between them. Default 1 and 1. */
  sessionIds?: SessionIds | undefined;
  /** `--metrics-listen`: where sessions and refusals are counted. */
  metrics?: ProxyMetrics | undefined;
}

/**
 * How an endpoint numbers its sessions. Worker N of M counts N, N+M, N+2M...: numbers stay unique over
 * all workers (log lines, `--record` files) without asking anyone.
 */
export interface SessionIds {
  first: number;
  step: number;
}

/** The events of an {@link Endpoint}, and of the proxy and upgrade handler built on it. */
export interface EndpointEvents {
  /** A WebSocket handshake completed; its target is being connected. */
  'session-open': [info: SessionInfo];
  /** A session ended: both legs closed, its log line written. */
  'session-close': [info: SessionEndInfo];
  /** The last open session ended (none is open now). */
  idle: [];
  /** A handshake was refused with an HTTP status (already answered and logged). */
  refused: [req: IncomingMessage, error: HttpError];
}

/**
 * The WebSocket end of the proxy: everything after a request is parsed. Each upgrade request goes
 * through admission (auth, target, policy), the WebSocket handshake, then a {@link Session} that
 * bridges it to its target. Tracks the open sessions for the heartbeat and a graceful shutdown.
 * Used by the proxy's own listener and by upgrade handlers on users' servers alike.
 */
export class Endpoint extends EventEmitter<EndpointEvents> {
  /** Handles an HTTP upgrade request: refuses it with an HTTP status, or opens a session. */
  readonly handleUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;
  private readonly sessions = new Set<Session>();
  /** Recordings of ended sessions still being written: a shutdown waits for their end. */
  private readonly recordings = new Set<Promise<void>>();
  private readonly stopHeartbeat: (() => void) | undefined;
  private readonly unfinished: UnfinishedMessages;
  private readonly clock: SessionClock<Session> | undefined;
  private nextId: number;
  private readonly idStep: number;
  private accepting = true;
  private drained: (() => void) | undefined;
  /** Whether 'session-close' will be heard, asked as each session opens ({@link relayTo} changes whose). */
  private wantsSessionClose: () => boolean = () => this.listenerCount('session-close') > 0;

  constructor(private readonly options: EndpointOptions) {
    super();
    this.nextId = options.sessionIds?.first ?? 1;
    this.idStep = options.sessionIds?.step ?? 1;
    this.unfinished = new UnfinishedMessages(options.maxUnfinished);
    const upgrade = createUpgrader({
      maxMessageSize: options.maxMessageSize,
      admit: options.admit,
      accepted: (upgraded) => this.open(upgraded),
      refused: (req, err) => {
        logRefusal(options.logger, req, err.status, err.message, err.kind, options.metrics?.refused);
        this.emit('refused', req, err);
      },
    });
    this.handleUpgrade = (req, socket, head) => {
      options.forwarded(req);
      if (this.accepting) upgrade(req, socket, head);
      else {
        writeHttpError(socket, 503, 'server is shutting down');
        options.metrics?.refused(503, 'shutting_down');
      }
    };
    options.metrics?.watch(() => this.openTraffic());
    this.clock = options.maxSessionDuration ? new SessionClock(options.maxSessionDuration) : undefined;
    this.stopHeartbeat = options.heartbeat > 0 ? startHeartbeat(options.heartbeat, this.sessions, options.logger) : undefined;
  }

  /**
   * Passes every event on to `to` (the proxy, or an upgrade handler, whose users listen there); the
   * sessions' closing facts are then kept for `to`'s 'session-close' listeners.
   */
  relayTo(to: Pick<EventEmitter<EndpointEvents>, 'emit' | 'listenerCount'>): void {
    this.wantsSessionClose = () => to.listenerCount('session-close') > 0;
    this.on('session-open', (info) => to.emit('session-open', info));
    this.on('session-close', (info) => to.emit('session-close', info));
    this.on('idle', () => to.emit('idle'));
    this.on('refused', (req, err) => to.emit('refused', req, err));
  }

  /** Open sessions (handshake done, not yet ended). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** The open sessions and the bytes they have moved so far (read by the metrics when collected). */
  openTraffic(): OpenTraffic {
    let bytesFromClient = 0;
    let bytesFromTarget = 0;
    for (const { bridge } of this.sessions) {
      if (!bridge) continue;
      bytesFromClient += bridge.bytesFromClient;
      bytesFromTarget += bridge.bytesFromTarget;
    }
    return { sessions: this.sessions.size, bytesFromClient, bytesFromTarget };
  }

  /**
   * Graceful stop: new handshakes get 503; each session is closed with 1001 after what is in flight;
   * those still open after the shutdown timeout are cut. Resolves once every session has ended and its
   * recording is written (a stalled disk waits no longer than the shutdown timeout).
   */
  async shutdown(): Promise<void> {
    this.accepting = false;
    this.stopHeartbeat?.();
    const ms = this.options.shutdownTimeout * 1000;
    // Half the time to read what targets have already sent, the rest for the close handshakes.
    for (const session of this.sessions) session.shutdown(ms / 2);
    const cut = setTimeout(() => {
      for (const session of this.sessions) session.terminate('shutdown timeout');
    }, ms);
    if (this.sessions.size > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    clearTimeout(cut);
    if (this.recordings.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(this.recordings), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
      clearTimeout(timer);
    }
  }

  private open(upgraded: ConstructorParameters<typeof Session>[1]): void {
    const { options } = this;
    const id = this.nextId;
    this.nextId += this.idStep;
    const session = new Session(id, upgraded, {
      connect: options.connect,
      logger: options.logger,
      hooks: options.hooks,
      record: options.record,
      recordMaxBytes: options.recordMaxBytes,
      targetProxyProtocol: options.targetProxyProtocol,
      unfinished: this.unfinished,
      metrics: options.metrics,
      opened: (info) => this.emit('session-open', info),
      wantsEndInfo: () => this.wantsSessionClose(),
      ended: (ended, info) => this.ended(ended, info),
    });
    this.sessions.add(session);
    this.clock?.start(session);
    void session.start();
  }

  private ended(session: Session, info: SessionEndInfo | undefined): void {
    this.sessions.delete(session);
    this.clock?.stop(session);
    const recording = session.recorder?.finished;
    if (recording) {
      this.recordings.add(recording);
      void recording.then(() => this.recordings.delete(recording));
    }
    if (info) this.emit('session-close', info);
    if (this.sessions.size > 0) return;
    this.drained?.();
    this.emit('idle');
  }
}
