import type net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { WebSocket } from 'ws';
import { CloseCode, closeReason } from './close-codes.js';
import { decodeBase64Message, type Encoding } from './encoding.js';
import { unwatchPaused, watchPaused } from './paused-clients.js';
import { protocolErrorClose } from './protocol-errors.js';
import { copyToBlock, RECYCLED_COPY_BYTES, recycleCopy, TargetReads } from './target-reads.js';
import type { UnfinishedHolder, UnfinishedMessages } from './unfinished-messages.js';

/** Who ended a session first. */
export type Initiator = 'client' | 'target' | 'proxy';

/** What a session amounted to, reported once when both legs are closed. */
export interface BridgeSummary {
  /** Payload bytes received from the client (after base64 decoding) and written to the target. */
  bytesFromClient: number;
  /** Bytes received from the target and sent to the client (before base64 encoding). */
  bytesFromTarget: number;
  durationMs: number;
  /** The close code the proxy sent, or else the one the client sent (1005 none, 1006 dropped). */
  code: number;
  reason: string;
  initiator: Initiator;
}

/**
 * Observes a bridge's traffic, for `--traffic`, recording and metrics. Called synchronously on the hot
 * path, so an implementation must only note or enqueue, never block; the data is valid only during the
 * call (it may be a read buffer that the next read overwrites), so what is kept must be copied.
 */
export interface BridgeHook {
  /** Bytes from the client (decoded), about to be written to the target. */
  fromClient?(data: Buffer): void;
  /** Bytes from the target, about to be sent to the client. */
  fromTarget?(data: Buffer): void;
  /** Both legs are closed; called exactly once. */
  closed?(summary: BridgeSummary): void;
}

/** Options for a {@link Bridge}. */
export interface BridgeOptions {
  /** Frame encoding towards the client, from subprotocol negotiation. */
  encoding: Encoding;
  /** Observers of this session. */
  hooks?: readonly BridgeHook[];
  /**
   * The target's reads, when it was connected with their `onread` (see {@link createTargetReads}).
   * Ignored for a TLS target, as `connectTarget` ignores `onread` there: its 'data' events are used.
   */
  reads?: TargetReads | undefined;
  /** The bound on unfinished client messages over all sessions; none when absent. */
  unfinished?: UnfinishedMessages | undefined;
}

/** What ws's message parser holds (its own fields, read after each read of the client socket). */
interface ReceiverState {
  /** Bytes read and not yet parsed: the part of a frame that has not all arrived. */
  _bufferedBytes: number;
  /** Payload of the message's earlier fragments, kept until its last one. */
  _messageLength: number;
  /** The message's length so far as its frame headers announce it, the frame being read included. */
  _totalPayloadLength: number;
}

/**
 * Bytes allowed to queue in user space towards one side before the other side is paused; never below
 * the socket's own high-water mark, so that a 'drain' always follows.
 */
const HIGH_WATER_MARK = 256 * 1024;
/**
 * After the client has gone, how long the target may go without taking any of the bytes still queued
 * for it, and then how long it may take to answer our FIN with its own.
 */
const TARGET_LINGER_MS = 5000;
/**
 * On a graceful stop, how often the target is checked for bytes still arriving; two checks in a row with
 * none while it was read mean the kernel holds nothing more from it.
 */
const SHUTDOWN_CHECK_MS = 25;

/** Read buffers for a target leg that a {@link Bridge} will carry: pass `onread` to `connectTarget`. */
export function createTargetReads(): TargetReads {
  return new TargetReads(onTargetRead);
}

const kBridge = Symbol('bridge');
type Tagged<T> = T & { [kBridge]: Bridge };
const BINARY = { binary: true } as const;
const TEXT = { binary: false } as const;

/**
 * Moves bytes between one WebSocket client and one target socket, both ways, with backpressure and
 * lossless close semantics:
 * - target ends: everything it sent is queued to the client before close 1000 "Target closed";
 * - client closes: everything it sent is written to the target, then the target gets a FIN (half-close);
 * - either side slower than the other: the fast side is paused above the high-water mark.
 *
 * Event handlers are shared functions that find their bridge through a symbol on the emitter, so an idle
 * session costs no closures.
 */
export class Bridge implements UnfinishedHolder {
  bytesFromClient = 0;
  bytesFromTarget = 0;
  /** Bytes of the client's unfinished message, as last noted for the bound over all sessions. */
  unfinished = 0;
  /** ws's parser of the client's frames, when unfinished messages are bounded. */
  private readonly receiver: ReceiverState | undefined;
  /** Cleared by each heartbeat ping, set again by the client's pong. */
  private answeredPing = true;
  /** The latest ping not yet answered because the client socket's backlog is above the high-water mark. */
  private pendingPong: Buffer | undefined;
  private readonly startedAt = performance.now();
  private readonly highWaterMark: number;
  private sentClose: { code: number; reason: string; initiator: Initiator } | undefined;
  private clientCode: number = CloseCode.ABNORMAL;
  private clientReason = '';
  private wsClosed = false;
  private targetClosed = false;
  /** The target is paused until the client socket drains. */
  private targetPaused = false;
  /** The client is paused until the target socket drains. */
  private clientPaused = false;
  /** While the client is paused: the target's backlog at the last probe, to tell a stuck target. */
  private probedBacklog = 0;
  /** The target is paused until the client socket has written the bytes lent from the target's read buffer. */
  private lentOut = false;
  /** Copies in recycled blocks whose writes have not completed, oldest first (made on the first one). */
  private copiesInFlight: Buffer[] | undefined;
  private copyWritten: (() => void) | undefined;
  private readonly reads: TargetReads | undefined;
  /** The target socket is corked until the end of this tick, so a burst of small messages is one write. */
  private targetCorked = false;
  private lingerTimer: NodeJS.Timeout | undefined;
  /** The target's write backlog when the linger timer was last armed, to tell a slow target from a stuck one. */
  private lingerBacklog = 0;
  private finished = false;
  private targetError: NodeJS.ErrnoException | undefined;
  /** A graceful stop's check for bytes still coming from the target (see {@link shutdown}). */
  private shutdownTimer: NodeJS.Timeout | undefined;
  private shutdownDeadline = 0;
  /** Bytes from the target at the last check, and the checks in a row that found no more. */
  private shutdownSeen = 0;
  private quietChecks = 0;

  /**
   * Starts moving bytes at once. The WebSocket may be paused (messages held back while the target was
   * connecting); the bridge resumes it.
   * @param clientSocket the socket under `ws`, watched for the client-bound backlog.
   */
  constructor(
    readonly ws: WebSocket,
    private readonly clientSocket: Duplex,
    readonly target: net.Socket,
    private readonly options: BridgeOptions,
  ) {
    this.highWaterMark = Math.max(HIGH_WATER_MARK, clientSocket.writableHighWaterMark, target.writableHighWaterMark);
    (ws as Tagged<WebSocket>)[kBridge] = this;
    (target as Tagged<net.Socket>)[kBridge] = this;
    (clientSocket as Tagged<Duplex>)[kBridge] = this;
    const reads = target instanceof tls.TLSSocket ? undefined : options.reads;
    this.reads = reads;
    // Bytes are lent from a read buffer only to a plain socket in binary: base64 text is a copy anyway,
    // and a TLS socket completes no write at once, so lending would pause the target after every read.
    if (reads) reads.mayOwn = options.encoding === 'binary' && !(clientSocket instanceof tls.TLSSocket);
    else target.on('data', onTargetData);
    target.on('end', onTargetEnd);
    target.on('error', onTargetError);
    target.on('close', onTargetClose);
    if (options.unfinished) {
      this.receiver = (ws as unknown as { _receiver: ReceiverState })._receiver;
      // After ws's own listener (added at the upgrade), so the read is parsed when this one looks.
      clientSocket.on('data', onClientRead);
    }
    ws.on('message', onClientMessage);
    ws.on('close', onClientClose);
    // The client's 'error' is the session's to log (here only a close ws made itself is noted); the
    // 'close' that follows ends this side.
    ws.on('error', onClientError);
    ws.on('ping', onPing);
    ws.on('pong', onPong);
    if (ws.readyState === WebSocket.CLOSED) {
      // The client left while the target was connecting.
      this.clientGone();
    } else {
      // Also when CLOSING (the client's close frame came during the connect): the socket must be read for
      // its end to be seen, and 'close' then arrives as usual.
      ws.resume();
      target.resume();
    }
  }

  /** Sends a close frame (queued after all data already sent) unless one was sent or received. */
  closeClient(code: number, reason: string, initiator: Initiator): void {
    if (this.sentClose || this.ws.readyState !== WebSocket.OPEN) return;
    this.sentClose = { code, reason, initiator };
    this.ws.close(code, closeReason(reason));
  }

  /**
   * Graceful stop: close 1001, but only once the client has everything the target had already sent.
   * Bytes still in the kernel (the target was held back because the client is slow, or they are not yet
   * read) are read and sent first, with the usual backpressure, until the target has been read and
   * quiet for two checks in a row, or for at most `maxWaitMs`.
   */
  shutdown(maxWaitMs: number): void {
    if (this.shutdownTimer || this.sentClose || this.ws.readyState !== WebSocket.OPEN) return;
    this.shutdownDeadline = performance.now() + maxWaitMs;
    this.shutdownSeen = this.bytesFromTarget;
    this.shutdownTimer = setTimeout(onShutdownCheck, SHUTDOWN_CHECK_MS, this);
  }

  /** @internal */
  handleShutdownCheck(): void {
    this.shutdownTimer = undefined;
    const reading = !this.targetPaused && !this.lentOut && !this.targetClosed;
    this.quietChecks = reading && this.bytesFromTarget === this.shutdownSeen ? this.quietChecks + 1 : 0;
    this.shutdownSeen = this.bytesFromTarget;
    if (this.quietChecks >= 2 || performance.now() >= this.shutdownDeadline) {
      this.closeClient(CloseCode.GOING_AWAY, 'Server shutting down', 'proxy');
      return;
    }
    if (!this.sentClose && this.ws.readyState === WebSocket.OPEN) this.shutdownTimer = setTimeout(onShutdownCheck, SHUTDOWN_CHECK_MS, this);
  }

  /**
   * One heartbeat: pings the client, or drops it when the previous ping has had no pong.
   * @returns false when the client was dropped.
   */
  heartbeat(): boolean {
    if (!this.answeredPing) {
      this.terminate('Heartbeat timeout');
      return false;
    }
    this.answeredPing = false;
    this.ws.ping();
    return true;
  }

  /** @internal The client answered a ping. */
  handlePong(): void {
    this.answeredPing = true;
  }

  /**
   * @internal A ping from the client: answered at once while its socket keeps up. Above the high-water
   * mark only the latest ping is answered, once the socket drains (RFC 6455 section 5.5.3 allows it), so
   * a client that sends pings and never reads holds one pong, not a queue of them.
   */
  handlePing(data: Buffer): void {
    if (this.clientSocket.writableLength < this.highWaterMark) {
      this.ws.pong(data);
      return;
    }
    if (this.pendingPong === undefined) this.clientSocket.once('drain', onPongDrain);
    this.pendingPong = Buffer.from(data);
  }

  /** @internal */
  handlePongDrain(): void {
    const data = this.pendingPong;
    this.pendingPong = undefined;
    if (data) this.ws.pong(data);
  }

  /**
   * @internal A read from the client socket, parsed by ws: what it leaves unfinished counts towards the
   * bound, as its frame headers announce it (a frame of 16 MiB counts whole from its header on). Counting
   * only what has arrived would let every hoarder read most of its message before one is dropped: their
   * memory would be given back, but only at the next garbage collection.
   */
  handleClientRead(): void {
    const receiver = this.receiver!;
    const arrived = receiver._bufferedBytes + receiver._messageLength;
    this.options.unfinished!.update(this, Math.max(arrived, receiver._totalPayloadLength));
  }

  /** The bound on unfinished messages over all sessions is passed and this session holds the most: close 1009 and let go. */
  dropUnfinished(limit: number): void {
    const reason = `Unfinished messages of all sessions above ${limit} bytes; this one held the most`;
    this.sentClose ??= { code: CloseCode.MESSAGE_TOO_BIG, reason, initiator: 'proxy' };
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(CloseCode.MESSAGE_TOO_BIG, closeReason(reason));
    // Not waiting for the client's answer: its parser would go on holding the message meanwhile.
    this.ws.terminate();
  }

  /** @internal ws closed the client itself (a limit or a protocol rule broken): the log names the proxy and why. */
  handleClientError(err: Error): void {
    const close = protocolErrorClose(err);
    if (close) this.sentClose ??= { ...close, initiator: 'proxy' };
  }

  /** Drops both legs at once, for an unanswered heartbeat or a shutdown that ran out of time. */
  terminate(reason: string): void {
    this.sentClose ??= { code: CloseCode.ABNORMAL, reason, initiator: 'proxy' };
    this.ws.terminate();
    this.target.destroy();
  }

  /** Called when the client leg is gone: hand the target a FIN after what is queued, and stop waiting for it after a while. */
  private clientGone(): void {
    if (this.wsClosed) return;
    this.wsClosed = true;
    unwatchPaused(this);
    this.options.unfinished?.update(this, 0);
    if (!this.target.destroyed) {
      this.target.end();
      // Nobody reads the target any more: keep draining it so its FIN can arrive.
      this.target.resume();
      this.armLinger();
    }
    this.maybeFinish();
  }

  private armLinger(): void {
    this.lingerBacklog = backlogOf(this.target);
    this.lingerTimer = setTimeout(onLingerTimeout, TARGET_LINGER_MS, this);
    this.lingerTimer.unref();
  }

  /** @internal */
  handleLingerTimeout(): void {
    const backlog = backlogOf(this.target);
    // A target still taking what the client sent gets more time: cutting it would lose the tail. No new
    // writes come after the client has gone, so any change means the target took some.
    if (backlog > 0 && backlog !== this.lingerBacklog) {
      this.armLinger();
      return;
    }
    // A plain close, not a reset: the kernel still delivers what it holds, after our FIN.
    this.target.destroy();
  }

  private maybeFinish(): void {
    if (this.finished || !this.wsClosed || !this.targetClosed) return;
    this.finished = true;
    clearTimeout(this.lingerTimer);
    clearTimeout(this.shutdownTimer);
    const summary: BridgeSummary = {
      bytesFromClient: this.bytesFromClient,
      bytesFromTarget: this.bytesFromTarget,
      durationMs: Math.round(performance.now() - this.startedAt),
      code: this.sentClose?.code ?? this.clientCode,
      reason: this.sentClose?.reason ?? this.clientReason,
      initiator: this.sentClose?.initiator ?? 'client',
    };
    for (const hook of this.options.hooks ?? []) hook.closed?.(summary);
  }

  // The handlers below are reached through the module-level trampolines at the end of this file.

  /** @internal A read into the target's {@link TargetReads}; false pauses the target. */
  handleTargetRead(bytes: number, buffer: Uint8Array): boolean {
    const reads = this.reads!;
    const view = (buffer as Buffer).subarray(0, bytes);
    if (reads.isOwn(buffer)) this.lendTargetData(view);
    // The shared buffer is overwritten by the next read of any session; base64 text is a copy already.
    else if (this.options.encoding === 'base64') this.handleTargetData(view);
    else if (bytes < RECYCLED_COPY_BYTES) this.handleTargetData(Buffer.from(view));
    else this.handleTargetData(copyToBlock(view), true);
    reads.afterRead(bytes, this.lentOut);
    return !this.targetPaused && !this.lentOut;
  }

  /**
   * Sends bytes still in the target's own read buffer. When the client socket cannot take them at once,
   * the target is paused until that write completes, so the next read cannot overwrite them.
   */
  private lendTargetData(view: Buffer): void {
    if (!this.noteFromTarget(view)) return;
    this.ws.send(view, BINARY, () => this.handleLentWritten());
    if (this.clientSocket.writableLength > 0) {
      this.lentOut = true;
      this.target.pause();
    }
  }

  /** @internal */
  handleLentWritten(): void {
    if (!this.lentOut) return;
    this.lentOut = false;
    if (!this.targetPaused) this.target.resume();
  }

  /** Counts and reports bytes from the target; false when the client is gone or closing (drain and discard). */
  private noteFromTarget(chunk: Buffer): boolean {
    if (this.ws.readyState !== WebSocket.OPEN) return false;
    this.bytesFromTarget += chunk.length;
    for (const hook of this.options.hooks ?? []) hook.fromTarget?.(chunk);
    return true;
  }

  /**
   * @internal Bytes from the target that nothing else will write to: sent, with the target paused above the
   * high-water mark. A `recycled` copy's block is given back once its write completes (writes complete in
   * order, so the blocks in flight are a queue).
   */
  handleTargetData(chunk: Buffer, recycled = false): void {
    if (!this.noteFromTarget(chunk)) {
      if (recycled) recycleCopy(chunk);
      return;
    }
    if (this.options.encoding === 'base64') this.ws.send(chunk.toString('base64'), TEXT);
    else if (recycled) {
      if (!this.copiesInFlight) {
        const inFlight: Buffer[] = [];
        this.copiesInFlight = inFlight;
        this.copyWritten = () => recycleCopy(inFlight.shift()!);
      }
      this.copiesInFlight.push(chunk);
      this.ws.send(chunk, BINARY, this.copyWritten);
    } else this.ws.send(chunk, BINARY);
    if (!this.targetPaused && this.clientSocket.writableLength >= this.highWaterMark) {
      this.targetPaused = true;
      this.target.pause();
      this.clientSocket.once('drain', onClientDrain);
    }
  }

  /** @internal */
  handleClientMessage(data: Buffer, isBinary: boolean): void {
    let bytes: Buffer | undefined = data;
    if (this.options.encoding === 'base64') {
      if (isBinary) {
        this.closeClient(CloseCode.UNSUPPORTED_DATA, 'Binary frame received: the base64 subprotocol carries text frames', 'proxy');
        return;
      }
      bytes = decodeBase64Message(data);
      if (bytes === undefined) {
        this.closeClient(CloseCode.INVALID_PAYLOAD, 'Text frame is not valid base64', 'proxy');
        return;
      }
    } else if (!isBinary) {
      this.closeClient(CloseCode.UNSUPPORTED_DATA, 'Text frame received: send binary frames or use the base64 subprotocol', 'proxy');
      return;
    }
    // After our close frame (protocol violation, target gone, shutdown) nothing more reaches the target.
    if (this.sentClose) return;
    const target = this.target;
    if (!target.writable) return;
    this.bytesFromClient += bytes.length;
    for (const hook of this.options.hooks ?? []) hook.fromClient?.(bytes);
    if (!this.targetCorked) {
      // One syscall per 64-byte message would dominate; every message of this read goes out together.
      this.targetCorked = true;
      target.cork();
      process.nextTick(uncorkTarget, this);
    }
    target.write(bytes);
    if (!this.clientPaused && target.writableLength >= this.highWaterMark) {
      this.clientPaused = true;
      this.ws.pause();
      target.once('drain', onTargetDrain);
      this.probedBacklog = backlogOf(target);
      watchPaused(this);
    }
  }

  /** @internal */
  handleTargetEnd(): void {
    this.closeClient(CloseCode.NORMAL, 'Target closed', 'target');
  }

  /** @internal */
  handleTargetClose(): void {
    this.targetClosed = true;
    this.reads?.release(this.lentOut);
    if (this.clientPaused) {
      // No 'drain' will come from a closed socket; a client left paused would never have its close reply
      // read, and the session would hang until ws's 30 s close timer.
      this.target.removeListener('drain', onTargetDrain);
      this.handleTargetDrain();
    }
    const err = this.targetError;
    if (err) this.closeClient(CloseCode.INTERNAL_ERROR, `Target connection failed: ${err.code ?? err.message}`, 'target');
    else this.closeClient(CloseCode.NORMAL, 'Target closed', 'target');
    if (this.wsClosed) this.maybeFinish();
  }

  /** @internal */
  handleClientClose(code: number, reason: Buffer): void {
    this.clientCode = code;
    this.clientReason = reason.toString();
    this.clientSocket.removeListener('drain', onClientDrain);
    this.clientSocket.removeListener('drain', onPongDrain);
    this.clientGone();
  }

  /** @internal The first error on the target leg, for the close reason when the target closes. */
  noteTargetError(err: Error): void {
    this.targetError ??= err;
  }

  /** @internal */
  uncorkTarget(): void {
    this.targetCorked = false;
    this.target.uncork();
  }

  /** @internal */
  handleTargetDrain(): void {
    this.clientPaused = false;
    unwatchPaused(this);
    this.ws.resume();
  }

  /**
   * @internal The client is paused: is it still there? While the target takes bytes, the client's end
   * (if it has gone) will be read in turn. A target that took nothing since the last probe may never
   * take more, so the client gets a ping: a client that has closed its socket answers it with a reset,
   * which the next write (the next probe's ping) reports, and the session ends as on any client close.
   * A client still there just gets a ping, which it answers.
   */
  probeClient(): void {
    const backlog = backlogOf(this.target);
    if (backlog !== this.probedBacklog) {
      this.probedBacklog = backlog;
      return;
    }
    this.ws.ping();
  }

  /** @internal */
  handleClientDrain(): void {
    this.targetPaused = false;
    if (!this.lentOut) this.target.resume();
  }
}

/**
 * Bytes not yet handed to the kernel for the target. `writableLength` counts a write in progress whole
 * until it completes (one client message can be 16 MiB), so libuv's own queue size is added to see it shrink.
 */
function backlogOf(target: net.Socket): number {
  const handle = (target as unknown as { _handle?: { writeQueueSize?: number } | null })._handle;
  return target.writableLength + (handle?.writeQueueSize ?? 0);
}

function bridgeOf(emitter: object): Bridge {
  return (emitter as Tagged<object>)[kBridge];
}

function onTargetData(this: net.Socket, chunk: Buffer): void {
  bridgeOf(this).handleTargetData(chunk);
}
function onTargetRead(this: net.Socket, bytes: number, buffer: Uint8Array): boolean {
  return bridgeOf(this).handleTargetRead(bytes, buffer);
}
function onTargetEnd(this: net.Socket): void {
  bridgeOf(this).handleTargetEnd();
}
function onTargetError(this: net.Socket, err: Error): void {
  bridgeOf(this).noteTargetError(err);
}
function onTargetClose(this: net.Socket): void {
  bridgeOf(this).handleTargetClose();
}
function onTargetDrain(this: net.Socket): void {
  bridgeOf(this).handleTargetDrain();
}
function onClientMessage(this: WebSocket, data: Buffer, isBinary: boolean): void {
  bridgeOf(this).handleClientMessage(data, isBinary);
}
function onClientClose(this: WebSocket, code: number, reason: Buffer): void {
  bridgeOf(this).handleClientClose(code, reason);
}
function onClientRead(this: Duplex): void {
  bridgeOf(this).handleClientRead();
}
function onClientDrain(this: Duplex): void {
  bridgeOf(this).handleClientDrain();
}
function uncorkTarget(bridge: Bridge): void {
  bridge.uncorkTarget();
}
function onShutdownCheck(bridge: Bridge): void {
  bridge.handleShutdownCheck();
}
function onLingerTimeout(bridge: Bridge): void {
  bridge.handleLingerTimeout();
}
function onPong(this: WebSocket): void {
  bridgeOf(this).handlePong();
}
function onPing(this: WebSocket, data: Buffer): void {
  bridgeOf(this).handlePing(data);
}
function onPongDrain(this: Duplex): void {
  bridgeOf(this).handlePongDrain();
}
function onClientError(this: WebSocket, err: Error): void {
  bridgeOf(this).handleClientError(err);
}
