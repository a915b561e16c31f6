import { createWriteStream, type WriteStream } from 'node:fs';
import type { BridgeHook, BridgeSummary } from '../bridge/bridge.js';
import type { Logger } from '../log/logger.js';
import { FROM_CLIENT, maxRecordLength, RECORDING_FOOTER, RECORDING_HEADER, recordLength, TO_CLIENT, writeRecord } from './format.js';

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
  private state: 'recording' | 'dropped' | 'closed' = 'recording';
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
    this.stream.write(RECORDING_HEADER);
    this.log.info({ event: 'record-open', file: this.path }, `${this.label}: recording to ${this.path}`);
  }

  get bufferedBytes(): number {
    return this.state === 'dropped' ? 0 : this.stream.writableLength + this.batchUsed;
  }

  get dropped(): boolean {
    return this.state === 'dropped';
  }

  fromClient(data: Buffer): void {
    this.add(FROM_CLIENT, data);
  }

  fromTarget(data: Buffer): void {
    this.add(TO_CLIENT, data);
  }

  closed(): void {
    if (this.state !== 'recording') return;
    this.state = 'closed';
    this.flushBatch();
    this.stream.end(RECORDING_FOOTER);
  }

  private add(marker: number, data: Buffer): void {
    if (this.state !== 'recording') return;
    const ms = Math.floor(this.now() - this.startedAt);
    const worst = maxRecordLength(ms, data.length);
    // Small messages go into the batch with room for their worst case, so their data is read once.
    const length = worst <= BATCH_BYTES ? worst : recordLength(ms, data);
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
    this.batchUsed = writeRecord(this.batch, this.batchUsed, marker, ms, data);
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

function flushLater(recorder: FileRecorder): void {
  recorder.flushScheduledBatch();
}
