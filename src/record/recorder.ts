import { createWriteStream, type WriteStream } from 'node:fs';
import type { BridgeHook, BridgeSummary } from '../bridge/bridge.js';
import type { Logger } from '../log/logger.js';
import {
  END_VARIABLE,
  FROM_CLIENT,
  maxRecordLength,
  RECORDING_FOOTER,
  RECORDING_HEADER,
  type RecordingEnd,
  type RecordingSession,
  recordLength,
  SESSION_VARIABLE,
  TO_CLIENT,
  variableLine,
  writeRecord,
} from './format.js';

/**
 * Default bound on a session's recording bytes waiting for the disk (32 MiB). Escaped data is up to four
 * times the traffic, so under heavy traffic this is a disk stalled for a second or more.
 */
const DEFAULT_MAX_BUFFERED_BYTES = 32 * 1024 * 1024;

/** Small messages are gathered into one buffer of this size per event-loop turn: fewer writes, less overhead. */
const BATCH_BYTES = 64 * 1024;

/** Options for {@link createRecorder}. */
export interface RecorderOptions {
  /** The `--record` FILE; this session writes `FILE.<sessionNumber>`, truncating an existing file. */
  basePath: string;
  /** The session's number, as in its log lines. */
  sessionNumber: number;
  /** Receives the opening line and at most one warning, when recording stops early. */
  logger: Logger;
  /** Milliseconds from a monotonic clock; default `performance.now`. */
  now?: () => number;
  /**
   * Recording bytes allowed to wait for the disk (the stream's queue plus the batch being filled). When a
   * message would take a backlog past it, the recording of this session is dropped with one warning. A
   * message larger than the bound is still taken when little waits, so memory stays under
   * max(bound, 64 KiB + one message's line), a line being at most 4 x the message + 32 bytes.
   * Default {@link DEFAULT_MAX_BUFFERED_BYTES}.
   */
  maxBufferedBytes?: number;
  /**
   * Who and what the session is: written before the data as `var VNC_frame_session`, and then, when the
   * session closes, how it ended as `var VNC_frame_end` after the data. Without it the file holds the
   * data alone, as Python websockify's.
   */
  session?: RecordingSession | undefined;
  /**
   * `--record-max-bytes`: the most bytes of message lines one session's file may hold (its header and
   * closing lines come on top). The message that would pass it is not recorded, nor any after it: a
   * comment and the end line say so, the file is still complete, and the session goes on. Default: no cap.
   */
  maxBytes?: number | undefined;
}

/** A session's recorder: a bridge hook, plus what a caller may want to watch. */
export interface Recorder extends BridgeHook {
  fromClient(data: Buffer): void;
  fromTarget(data: Buffer): void;
  /** Completes the file; also to be called for a session that never got its bridge (target down). */
  closed(summary: BridgeSummary): void;
  /** The file written, `FILE.<sessionNumber>`. */
  readonly path: string;
  /** Recording bytes waiting for the disk now (see {@link RecorderOptions.maxBufferedBytes} for its bound). */
  readonly bufferedBytes: number;
  /** True once recording stopped early (disk error or bound reached); the session itself goes on. */
  readonly dropped: boolean;
  /** True once the recording reached {@link RecorderOptions.maxBytes}; the file is still completed. */
  readonly capped: boolean;
  /** Resolves when the file is closed, complete or abandoned; never rejects. */
  readonly finished: Promise<void>;
}

/**
 * Starts recording one WebSocket session to `basePath.sessionNumber` in noVNC's playback format (see
 * format.ts). The hook only formats into memory; the writes go through an asynchronous file stream, so a
 * slow or failing disk never holds up the session: it costs at most the bound in memory (see
 * {@link RecorderOptions.maxBufferedBytes}), then one warning and no more recording. The file is completed
 * with its `'EOF'];` line when the session closes.
 */
export function createRecorder(options: RecorderOptions): Recorder {
  return new FileRecorder(options);
}

class FileRecorder implements Recorder {
  readonly path: string;
  readonly finished: Promise<void>;
  private readonly stream: WriteStream;
  private readonly now: () => number;
  private readonly startedAt: number;
  private readonly maxBufferedBytes: number;
  private readonly log: Logger;
  private readonly label: string;
  private state: 'recording' | 'capped' | 'dropped' | 'closed' = 'recording';
  private readonly session: RecordingSession | undefined;
  private readonly maxBytes: number;
  /** Bytes of message lines recorded so far, against {@link RecorderOptions.maxBytes}. */
  private recordedBytes = 0;
  private stopped: RecordingEnd['stopped'];
  private warned = false;
  private batch: Buffer | undefined;
  private batchUsed = 0;
  private flushScheduled = false;

  constructor(options: RecorderOptions) {
    this.path = `${options.basePath}.${options.sessionNumber}`;
    this.now = options.now ?? (() => performance.now());
    this.startedAt = this.now();
    this.maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    this.log = options.logger;
    this.label = `conn ${options.sessionNumber}`;
    this.stream = createWriteStream(this.path, { flags: 'w' });
    this.finished = new Promise((resolve) => this.stream.once('close', () => resolve()));
    this.stream.on('error', (err: NodeJS.ErrnoException) => this.onError(err));
    this.session = options.session;
    this.maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY;
    this.stream.write(this.session ? withSessionLine(this.session) : RECORDING_HEADER);
    this.log.info({ event: 'record-open', file: this.path }, `${this.label}: recording to ${this.path}`);
  }

  get bufferedBytes(): number {
    return this.state === 'dropped' ? 0 : this.stream.writableLength + this.batchUsed;
  }

  get dropped(): boolean {
    return this.state === 'dropped';
  }

  get capped(): boolean {
    return this.state === 'capped';
  }

  fromClient(data: Buffer): void {
    this.add(FROM_CLIENT, data);
  }

  fromTarget(data: Buffer): void {
    this.add(TO_CLIENT, data);
  }

  closed(summary: BridgeSummary): void {
    if (this.state !== 'recording' && this.state !== 'capped') return;
    this.state = 'closed';
    this.flushBatch();
    if (!this.session) {
      this.stream.end(RECORDING_FOOTER);
      return;
    }
    const end: RecordingEnd = {
      end: new Date().toISOString(),
      durationMs: summary.durationMs,
      code: summary.code,
      reason: summary.reason,
      initiator: summary.initiator,
      bytesFromClient: summary.bytesFromClient,
      bytesFromTarget: summary.bytesFromTarget,
      ...(this.stopped ? { stopped: this.stopped } : {}),
    };
    this.stream.end(RECORDING_FOOTER + variableLine(END_VARIABLE, end));
  }

  private add(marker: number, data: Buffer): void {
    if (this.state !== 'recording') return;
    const ms = Math.floor(this.now() - this.startedAt);
    const worst = maxRecordLength(ms, data.length);
    // Small messages go into the batch with room for their worst case, so their data is read once.
    // The cap needs the exact length; so does a message too large for the batch.
    const length = worst <= BATCH_BYTES && worst + this.recordedBytes <= this.maxBytes ? worst : recordLength(ms, data);
    if (this.recordedBytes + length > this.maxBytes) {
      this.cap(ms);
      return;
    }
    this.recordedBytes += length;
    const waiting = this.stream.writableLength + this.batchUsed;
    // A backlog past the bound means the disk is slower than the traffic; one large message alone does not.
    if (waiting > BATCH_BYTES && waiting + length > this.maxBufferedBytes) {
      this.drop(
        { event: 'record-stopped', file: this.path, limit: this.maxBufferedBytes },
        `more than ${this.maxBufferedBytes} bytes were waiting for the disk`,
      );
      return;
    }
    if (length > BATCH_BYTES - this.batchUsed) this.flushBatch();
    if (length > BATCH_BYTES) {
      const line = Buffer.allocUnsafeSlow(length);
      writeRecord(line, 0, marker, ms, data);
      this.stream.write(line);
      return;
    }
    this.batch ??= Buffer.allocUnsafeSlow(BATCH_BYTES);
    const start = this.batchUsed;
    this.batchUsed = writeRecord(this.batch, start, marker, ms, data);
    // The worst case was counted against the cap; the line is often shorter.
    this.recordedBytes -= length - (this.batchUsed - start);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(flushLater, this);
    }
  }

  /** @internal The batch is written once per event-loop turn. */
  flushScheduledBatch(): void {
    this.flushScheduled = false;
    this.flushBatch();
  }

  /** Hands the batch to the stream as an exact-size copy, so the stream never pins a mostly empty 64 KiB buffer. */
  private flushBatch(): void {
    if (this.state === 'dropped' || this.batchUsed === 0) return;
    const chunk = Buffer.allocUnsafeSlow(this.batchUsed);
    this.batch!.copy(chunk, 0, 0, this.batchUsed);
    this.batchUsed = 0;
    this.stream.write(chunk);
  }

  /** Stops taking messages for good, with a comment in the data saying why; the file is completed at close. */
  private cap(ms: number): void {
    this.state = 'capped';
    this.stopped = { reason: 'max-bytes', maxBytes: this.maxBytes, ms };
    this.flushBatch();
    this.batch = undefined;
    this.stream.write(`// recording stopped at ${ms} ms: --record-max-bytes ${this.maxBytes} reached; the session went on unrecorded\n`);
    this.log.warn(
      { event: 'record-capped', file: this.path, limit: this.maxBytes },
      `${this.label}: recording to ${this.path} stopped at its limit of ${this.maxBytes} bytes; the session goes on unrecorded`,
    );
  }

  private onError(err: NodeJS.ErrnoException): void {
    this.drop({ event: 'record-stopped', file: this.path, err: err.code ?? err.message }, err.message);
  }

  /** Stops recording for good, frees what was waiting and warns once; the file is left without its 'EOF'. */
  private drop(fields: Record<string, unknown>, why: string): void {
    this.state = 'dropped';
    this.batch = undefined;
    this.batchUsed = 0;
    this.stream.destroy();
    if (this.warned) return;
    this.warned = true;
    this.log.warn(fields, `${this.label}: recording to ${this.path} stopped (${why}); the session goes on unrecorded`);
  }
}

/** The header with the session's line between the encoding line and the data. */
function withSessionLine(session: RecordingSession): string {
  const split = RECORDING_HEADER.indexOf('\n') + 1;
  return RECORDING_HEADER.slice(0, split) + variableLine(SESSION_VARIABLE, session) + RECORDING_HEADER.slice(split);
}

function flushLater(recorder: FileRecorder): void {
  recorder.flushScheduledBatch();
}
