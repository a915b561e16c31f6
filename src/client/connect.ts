import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { CloseCode, closeReason } from '../bridge/close-codes.js';
import { decodeBase64Message, type Encoding } from '../bridge/encoding.js';
import type { Logger } from '../log/logger.js';
import { type ClientOptions, type ResolvedClientOptions, resolveClientOptions } from './options.js';

/** What one client session amounted to, once both sides are closed. */
export interface ClientSummary {
  /** The WebSocket opened (101 received, subprotocol agreed). */
  opened: boolean;
  /** Bytes read from the local side and sent to the server (before base64 encoding). */
  bytesToServer: number;
  /** Bytes received from the server (after base64 decoding) and written to the local side. */
  bytesFromServer: number;
  /** The close code of the WebSocket (1005: none given, 1006: dropped or never opened). */
  code: number;
  reason: string;
  /** Why the WebSocket could not be opened or failed: refused, `Unexpected server response: 403`, a TLS error... */
  error?: string | undefined;
  durationMs: number;
}

/** One local connection carried over one WebSocket, as {@link connectToWebSocket} returns it. */
export interface ClientSession {
  /** The WebSocket, opening or open. */
  readonly ws: WebSocket;
  /** Resolves once both sides are closed (never rejects). */
  readonly closed: Promise<ClientSummary>;
}

/**
 * Bytes allowed to queue towards one side before the other side is paused (the proxy's own mark),
 * never below the socket's own high-water mark, so that a 'drain' always follows.
 */
const HIGH_WATER_MARK = 256 * 1024;
/** After the WebSocket is gone and our FIN is out, how long the local peer may take to close its side. */
const LOCAL_LINGER_MS = 5000;
/** Close codes that are the ordinary end of a session, not worth a warning. */
const ORDINARY_CLOSES: ReadonlySet<number> = new Set([CloseCode.NORMAL, CloseCode.GOING_AWAY]);

let lastSessionId = 0;

/**
 * Opens a WebSocket to `url` (`ws://` or `wss://`; path and query, such as `?token=`, are kept) and moves
 * bytes between it and `local` (a TCP socket, stdin/stdout made one duplex, ...), both ways:
 * - each side slower than the other pauses the other above a high-water mark, so memory stays bounded;
 * - the local side's end (FIN): everything it sent goes out first, then a close 1000;
 * - the WebSocket's close: everything received is written to the local side, then it is ended (FIN);
 * - the WebSocket cannot be opened (refused, an HTTP error status, TLS): the local side is closed.
 * `local` is not read until the WebSocket is open.
 * @throws UsageError for a bad URL or options (see {@link resolveClientOptions}).
 */
export function connectToWebSocket(local: Duplex, url: string | URL, options: ClientOptions = {}): ClientSession {
  return startSession(local, resolveClientOptions(url, options));
}

/** {@link connectToWebSocket} with options already checked, for a listener that serves many sessions. */
export function startSession(local: Duplex, resolved: ResolvedClientOptions): ClientSession {
  const session = new ClientBridge(local, resolved);
  return { ws: session.ws, closed: session.closed };
}

class ClientBridge {
  readonly ws: WebSocket;
  readonly closed: Promise<ClientSummary>;
  private readonly id = ++lastSessionId;
  private readonly logger: Logger | undefined;
  private readonly startedAt = performance.now();
  private readonly url: string;
  private encoding: Encoding = 'binary';
  /** The socket under the WebSocket, watched for the server-bound backlog. */
  private wsSocket: Duplex | undefined;
  private opened = false;
  private bytesToServer = 0;
  private bytesFromServer = 0;
  private code: number = CloseCode.ABNORMAL;
  private reason = '';
  private error: string | undefined;
  /** Local reads are paused until the WebSocket's socket drains. */
  private localPaused = false;
  /** WebSocket reads are paused until the local side drains. */
  private wsPaused = false;
  private localEnded = false;
  private localClosed = false;
  private wsClosed = false;
  private answeredPing = true;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private lingerTimer: NodeJS.Timeout | undefined;
  private finish!: (summary: ClientSummary) => void;

  constructor(
    private readonly local: Duplex,
    private readonly settings: ResolvedClientOptions,
  ) {
    this.logger = settings.logger;
    this.closed = new Promise((resolve) => (this.finish = resolve));
    // The URL as logged: its query may hold a token, which logs must not keep.
    this.url = `${settings.url.origin}${settings.url.pathname}${settings.url.search ? '?...' : ''}`;
    this.ws = new WebSocket(settings.url, settings.protocols, settings.ws);
    this.ws.on('upgrade', (res: IncomingMessage) => (this.wsSocket = res.socket));
    this.ws.on('open', () => this.handleOpen());
    this.ws.on('message', (data: Buffer, isBinary: boolean) => this.handleMessage(data, isBinary));
    this.ws.on('error', (err: NodeJS.ErrnoException) => this.handleWsError(err));
    this.ws.on('close', (code: number, reason: Buffer) => this.handleWsClose(code, reason.toString()));
    this.ws.on('pong', () => (this.answeredPing = true));
    local.pause();
    local.on('end', () => this.handleLocalEnd());
    local.on('error', (err: NodeJS.ErrnoException) => {
      this.logger?.debug(
        { event: 'local-error', conn: this.id, error: err.code ?? err.message },
        `conn ${this.id}: local side: ${err.message}`,
      );
    });
    local.on('close', () => this.handleLocalClose());
  }

  private handleOpen(): void {
    this.opened = true;
    this.encoding = this.ws.protocol === 'base64' ? 'base64' : 'binary';
    this.logger?.debug(
      { event: 'ws-open', conn: this.id, url: this.url, protocol: this.ws.protocol || undefined },
      `conn ${this.id}: WebSocket open to ${this.url} (${this.ws.protocol || 'no subprotocol'})`,
    );
    if (this.localClosed) {
      this.ws.close(CloseCode.GOING_AWAY, 'Local side closed');
      return;
    }
    this.local.on('data', (chunk: Buffer) => this.handleLocalData(chunk));
    this.local.resume();
    if (this.settings.heartbeatMs > 0) this.heartbeatTimer = setInterval(() => this.heartbeat(), this.settings.heartbeatMs);
  }

  private heartbeat(): void {
    if (!this.answeredPing) {
      this.logger?.info(
        { event: 'heartbeat-timeout', conn: this.id },
        `conn ${this.id}: no pong within ${this.settings.heartbeatMs / 1000} s, dropping`,
      );
      this.error = 'Heartbeat timeout';
      this.ws.terminate();
      return;
    }
    this.answeredPing = false;
    this.ws.ping();
  }

  /** Bytes from the local side: sent, with the local side paused above the high-water mark. */
  private handleLocalData(chunk: Buffer): void {
    // After our close frame or the server's, nothing more can be sent: discard, so the local FIN still comes.
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.bytesToServer += chunk.length;
    if (this.encoding === 'base64') this.ws.send(chunk.toString('base64'), { binary: false });
    else this.ws.send(chunk, { binary: true });
    const socket = this.wsSocket;
    if (!this.localPaused && socket && this.ws.bufferedAmount >= Math.max(HIGH_WATER_MARK, socket.writableHighWaterMark)) {
      this.localPaused = true;
      this.local.pause();
      socket.once('drain', () => {
        this.localPaused = false;
        this.local.resume();
      });
    }
  }

  /** A message from the server: written to the local side, with the WebSocket paused while the local side is full. */
  private handleMessage(data: Buffer, isBinary: boolean): void {
    let bytes: Buffer | undefined = data;
    if (this.encoding === 'base64') {
      bytes = isBinary ? undefined : decodeBase64Message(data);
      if (bytes === undefined) {
        this.closeWs(isBinary ? CloseCode.UNSUPPORTED_DATA : CloseCode.INVALID_PAYLOAD, 'Expected text frames of base64');
        return;
      }
    } else if (!isBinary) {
      this.closeWs(CloseCode.UNSUPPORTED_DATA, 'Text frame received: binary frames expected');
      return;
    }
    if (!this.local.writable) return;
    this.bytesFromServer += bytes.length;
    if (!this.local.write(bytes) && !this.wsPaused) {
      this.wsPaused = true;
      this.ws.pause();
      this.local.once('drain', () => this.resumeWs());
    }
  }

  private resumeWs(): void {
    if (!this.wsPaused) return;
    this.wsPaused = false;
    this.ws.resume();
  }

  private closeWs(code: number, reason: string): void {
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.logger?.warn({ event: 'protocol-error', conn: this.id, code, reason }, `conn ${this.id}: ${reason}; closing with ${code}`);
    this.ws.close(code, closeReason(reason));
  }

  /** The local side's FIN: everything it sent is queued already, so the close frame follows it. */
  private handleLocalEnd(): void {
    this.localEnded = true;
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(CloseCode.NORMAL, 'Local side closed');
  }

  private handleLocalClose(): void {
    this.localClosed = true;
    clearTimeout(this.lingerTimer);
    // A WebSocket still paused for this side would never read the server's close frame.
    this.resumeWs();
    if (!this.localEnded && !this.wsClosed) {
      // Reset or destroyed before its FIN: the server is told the session is over.
      if (this.ws.readyState === WebSocket.OPEN) this.ws.close(CloseCode.GOING_AWAY, 'Local connection lost');
      else if (this.ws.readyState === WebSocket.CONNECTING) {
        this.error ??= 'the local side closed before the WebSocket opened';
        this.ws.terminate();
      }
    }
    this.maybeFinish();
  }

  private handleWsError(err: NodeJS.ErrnoException): void {
    // ws says `Unexpected server response: 403` for an HTTP answer other than 101; a TLS failure's code
    // (SELF_SIGNED_CERT_IN_CHAIN...) is added when its message does not name it.
    this.error ??= err.code && !err.message.includes(err.code) ? `${err.message} (${err.code})` : err.message;
    if (this.opened) {
      this.logger?.warn({ event: 'ws-error', conn: this.id, error: this.error }, `conn ${this.id}: WebSocket failed: ${this.error}`);
    }
  }

  /** The WebSocket is closed: the local side gets everything received, then its FIN (or is closed when it never opened). */
  private handleWsClose(code: number, reason: string): void {
    this.wsClosed = true;
    this.code = code;
    this.reason = reason;
    clearInterval(this.heartbeatTimer);
    if (!this.opened) {
      this.logger?.error(
        { event: 'ws-refused', conn: this.id, url: this.url, error: this.error },
        `conn ${this.id}: cannot open WebSocket to ${this.url}: ${this.error ?? 'closed during the handshake'}`,
      );
      this.local.destroy();
    } else {
      if (!ORDINARY_CLOSES.has(code) && !this.error) {
        this.logger?.warn(
          { event: 'ws-close', conn: this.id, code, reason },
          `conn ${this.id}: WebSocket closed with code ${code}${reason ? ` (${reason})` : ''}`,
        );
      }
      if (!this.localClosed) {
        this.local.end();
        // Nobody forwards local bytes any more: read and discard them so that the local FIN can arrive.
        this.local.resume();
        this.local.once('finish', () => {
          this.lingerTimer = setTimeout(() => this.local.destroy(), LOCAL_LINGER_MS);
          this.lingerTimer.unref();
        });
      }
    }
    this.maybeFinish();
  }

  private maybeFinish(): void {
    if (!this.localClosed || !this.wsClosed) return;
    const summary: ClientSummary = {
      opened: this.opened,
      bytesToServer: this.bytesToServer,
      bytesFromServer: this.bytesFromServer,
      code: this.code,
      reason: this.reason,
      error: this.error,
      durationMs: Math.round(performance.now() - this.startedAt),
    };
    if (this.opened) {
      this.logger?.info(
        { event: 'closed', conn: this.id, ...summary },
        `conn ${this.id}: closed (code ${summary.code}): ${summary.bytesToServer} bytes sent, ${summary.bytesFromServer} received in ${summary.durationMs} ms`,
      );
    }
    this.finish(summary);
  }
}
