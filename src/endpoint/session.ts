import { WebSocket } from 'ws';
import { Bridge, type BridgeHook, type BridgeSummary, createTargetReads } from '../bridge/bridge.js';
import { CloseCode, closeReason } from '../bridge/close-codes.js';
import type { UnfinishedMessages } from '../bridge/unfinished-messages.js';
import { describeAddress, originOf } from '../client-address/origin.js';
import { targetProxyHeader } from '../client-address/target-header.js';
import type { Upgraded } from '../handshake/upgrade.js';
import type { Logger } from '../log/logger.js';
import type { ProxyMetrics } from '../metrics/registry.js';
import { createRecorder, type Recorder } from '../record/recorder.js';
import { type ConnectOptions, connectTarget } from '../targets/connect.js';
import { describeTarget } from '../targets/target.js';

/** What every session shares: how to connect, and who observes. */
export interface SessionContext {
  connect: ConnectOptions;
  logger: Logger;
  /** Extra observers of each session's traffic (for example `--traffic`). */
  hooks: readonly BridgeHook[];
  /** `--record FILE`: record each session to `FILE.<id>`. */
  record?: string | undefined;
  /** `--record-max-bytes`: the cap on one session's recorded message lines. */
  recordMaxBytes?: number | undefined;
  /** Begin the target connection with a PROXY v2 header naming the client (`--target-proxy-protocol`). */
  targetProxyProtocol: boolean;
  /** The bound on unfinished client messages over all sessions. */
  unfinished: UnfinishedMessages;
  /** `--metrics-listen`: told of the target's connect time and of each end. */
  metrics?: ProxyMetrics | undefined;
  /** Called once the handshake is done, before the target is connected. */
  opened(info: SessionInfo): void;
  /**
   * Whether anyone wants the end's facts ({@link SessionEndInfo}): asked once the session opens, so that
   * a session nobody will report on does not keep them (a few hundred bytes per idle session).
   */
  wantsEndInfo(): boolean;
  /** Called once when the session has fully ended, with its facts if they were wanted. */
  ended(session: Session, info: SessionEndInfo | undefined): void;
}

/** A session's facts as its opening log line has them. */
export interface SessionInfo {
  /** The session's number, unique in this process: `conn N` in log lines, `FILE.N` for `--record`. */
  id: number;
  /**
   * The real client's address: `host:port`; `host` alone when a forwarding header gave no port;
   * `unix-socket` on a Unix socket. Behind a `trustedProxy` it is the client the proxy named.
   */
  client: string;
  /** The connection's own peer, in the same form: the client itself, or the trusted proxy in front of it. */
  peer: string;
  /** Where the session goes: `host:port` or `unix:PATH`. */
  target: string;
  /** The chosen subprotocol: `binary`, `base64`, or `none`. */
  protocol: string;
  /** The request's path and query. */
  path: string;
}

/** A session's facts as its closing log line has them: bytes each way, duration, close code, who closed. */
export interface SessionEndInfo extends SessionInfo, BridgeSummary {}

const kSession = Symbol('session');
type Tagged<T> = T & { [kSession]: Session };

/** Shared by every session (found through a symbol on the WebSocket), so a session costs no closure for it. */
function onClientError(this: WebSocket, err: Error): void {
  (this as Tagged<WebSocket>)[kSession].logClientError(err);
}

/**
 * One WebSocket client's life after its handshake: connect the target (holding the client's messages
 * back meanwhile), bridge the two, and log the opening and the close with its totals.
 */
export class Session {
  /** Present once the target is connected. */
  bridge: Bridge | undefined;
  /** With `--record`: this session's recorder, from the handshake on (as Python websockify). */
  recorder: Recorder | undefined;
  private readonly log: Logger;
  private readonly startedAt = performance.now();
  private readonly ws: WebSocket;
  /** The handshake's outcome, dropped once read: a long session need not keep its request alive. */
  private upgraded: Upgraded | undefined;
  /** Set by start() when the end's facts are wanted. */
  private info: SessionInfo | undefined;

  constructor(
    readonly id: number,
    upgraded: Upgraded,
    private readonly context: SessionContext,
  ) {
    this.upgraded = upgraded;
    this.ws = upgraded.ws;
    this.log = context.logger;
    (upgraded.ws as Tagged<WebSocket>)[kSession] = this;
    upgraded.ws.on('error', onClientError);
    upgraded.ws.pause();
  }

  /** Connects the target and starts the bridge, or closes the client with 1011 naming the target. */
  async start(): Promise<void> {
    const upgraded = this.upgraded!;
    this.upgraded = undefined;
    const { ws, socket, req, choice } = upgraded;
    const target = describeTarget(upgraded.target);
    const origin = originOf(req);
    const client = describeAddress(origin.client);
    const peer = describeAddress(origin.peer);
    const protocol = choice.protocol ?? 'none';
    const path = req.url ?? '/';
    const info: SessionInfo = { id: this.id, client, peer, target, protocol, path };
    if (this.context.wantsEndInfo()) this.info = info;
    if (this.context.record !== undefined) this.recorder = this.startRecording(info);
    // Told before the line is logged: a worker's primary learns the session number before anyone reading
    // the log could kill the worker, so that its replacement never gives the number again.
    this.context.opened(info);
    // The peer is named only when it is not the client: a proxy stands between.
    const via = peer === client ? '' : ` via ${peer}`;
    this.log.info(
      { event: 'open', conn: this.id, client, ...(via ? { peer } : {}), target, protocol, path },
      `conn ${this.id}: ${client}${via} connected (${path}, protocol ${protocol}); proxying to ${target}`,
    );
    const reads = createTargetReads();
    let targetSocket: Awaited<ReturnType<typeof connectTarget>>;
    const { metrics } = this.context;
    const connecting = metrics && performance.now();
    try {
      const header = this.context.targetProxyProtocol ? targetProxyHeader(origin) : undefined;
      targetSocket = await connectTarget(upgraded.target, this.context.connect, reads.onread, header);
      if (connecting !== undefined) metrics?.targetConnected((performance.now() - connecting) / 1000, true);
    } catch (err) {
      if (connecting !== undefined) metrics?.targetConnected((performance.now() - connecting) / 1000, false);
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      const reason = `Failed to connect to target ${target}: ${code}`;
      this.log.warn({ event: 'target-failed', conn: this.id, target, err: code }, `conn ${this.id}: ${reason}`);
      const summary = (): BridgeSummary => ({
        bytesFromClient: 0,
        bytesFromTarget: 0,
        durationMs: this.elapsed(),
        code: CloseCode.INTERNAL_ERROR,
        reason,
        initiator: 'proxy',
      });
      // The recording of a session whose target failed is complete and empty, as Python websockify's.
      if (ws.readyState === WebSocket.CLOSED) return this.finish(summary(), true);
      ws.once('close', () => this.finish(summary(), true));
      ws.resume(); // the client's close reply must be read
      ws.close(CloseCode.INTERNAL_ERROR, closeReason(reason));
      return;
    }
    this.bridge = new Bridge(ws, socket, targetSocket, {
      encoding: choice.encoding,
      reads,
      unfinished: this.context.unfinished,
      hooks: this.recorder ? [...this.context.hooks, this.recorder, this] : [...this.context.hooks, this],
    });
  }

  /** @internal The bridge's hook: both legs are closed. */
  closed(summary: BridgeSummary): void {
    this.finish(summary);
  }

  /** @internal */
  logClientError(err: Error): void {
    this.log.debug({ event: 'client-error', conn: this.id, err: err.message }, `conn ${this.id}: client error: ${err.message}`);
  }

  /**
   * Graceful stop: close 1001 after what is in flight, the target's bytes still unread included (read
   * for at most `maxWaitMs`); the session then ends as usual.
   */
  shutdown(maxWaitMs: number): void {
    if (this.bridge) this.bridge.shutdown(maxWaitMs);
    else if (this.ws.readyState === WebSocket.OPEN) this.ws.close(CloseCode.GOING_AWAY, 'Server shutting down');
  }

  /** Past `--max-session-duration`: close 1008 with `reason` after what is in flight. */
  expire(reason: string): void {
    if (this.bridge) this.bridge.closeClient(CloseCode.POLICY_VIOLATION, reason, 'proxy');
    else if (this.ws.readyState === WebSocket.OPEN) this.ws.close(CloseCode.POLICY_VIOLATION, reason);
  }

  /** Drops the session at once. */
  terminate(reason: string): void {
    if (this.bridge) this.bridge.terminate(reason);
    else this.ws.terminate();
  }

  /** Opens the recording, its first line saying who and what the session is (for audit). */
  private startRecording(info: SessionInfo): Recorder {
    const token = new URL(info.path, 'http://x').searchParams.get('token') ?? undefined;
    const { id, client, peer, target, path, protocol } = info;
    return createRecorder({
      basePath: this.context.record!,
      sessionNumber: id,
      logger: this.log,
      maxBytes: this.context.recordMaxBytes,
      session: { id, client, peer, target, ...(token === undefined ? {} : { token }), path, protocol, start: new Date().toISOString() },
    });
  }

  private elapsed(): number {
    return Math.round(performance.now() - this.startedAt);
  }

  private finish(summary: BridgeSummary, closeRecording = false): void {
    if (closeRecording) this.recorder?.closed(summary);
    const why = summary.reason ? ` (${summary.reason})` : '';
    this.log.info(
      { event: 'close', conn: this.id, ...summary },
      `conn ${this.id}: closed by ${summary.initiator}, code ${summary.code}${why}; ` +
        `${summary.bytesFromClient} bytes from client, ${summary.bytesFromTarget} bytes from target, ${(summary.durationMs / 1000).toFixed(3)} s`,
    );
    this.context.metrics?.sessionEnded(summary);
    this.context.ended(this, this.info && { ...this.info, ...summary });
  }
}
