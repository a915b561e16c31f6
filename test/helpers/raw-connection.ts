import net from 'node:net';
import { maskedFrame, Opcode, parseFrame } from '../../bench/wire.js';

/** The head of an HTTP response as read off the wire. */
export interface HttpHead {
  statusLine: string;
  status: number;
  /** Header names lower-cased; a repeated header keeps its last value. */
  headers: Record<string, string>;
}

/** What a client saw of the frames a server sent after its 101. */
export interface FramesSeen {
  /** Payload bytes of every data frame (text frames as their raw UTF-8 bytes). */
  data: Buffer;
  /** The close frame's code, or undefined when the connection ended without one. */
  closeCode: number | undefined;
  closeReason: string;
}

/**
 * A raw TCP client for conformance and HTTP-stage tests: it writes exactly the bytes it is given and
 * reads the server's answer byte by byte, so a test sees the wire, not a library's interpretation.
 * Frames and handshakes to write come from bench/wire.ts.
 */
export class RawConnection {
  private buffer = Buffer.alloc(0);
  /** Bytes of `buffer` already handed out by {@link head} or {@link frames}. */
  private consumed = 0;
  private ended = false;
  private readonly wakers = new Set<() => void>();

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.wake();
    });
    // A reset counts as the end: the test asserts on what arrived before it.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.ended = true;
      this.wake();
    });
  }

  /** Connects to 127.0.0.1:`port`. */
  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      // Not half-open: like a browser, the client closes its side once the server has closed its own.
      // No Nagle: a test that writes byte by byte means separate segments.
      const socket = net.connect({ host: '127.0.0.1', port, noDelay: true }, () => {
        socket.removeListener('error', reject);
        resolve(new RawConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  /** Everything received so far, including bytes already parsed. */
  get received(): Buffer {
    return this.buffer;
  }

  /** Writes bytes as one write. */
  write(bytes: Buffer | string): void {
    this.socket.write(bytes);
  }

  /**
   * Writes each chunk separately, waiting for each to be flushed and `pauseMs` between them. With 0 the
   * pause is one turn of the event loop: enough for a server in this process to read each chunk on its
   * own, and some 30 times faster than a 1 ms timer (for property tests that write byte by byte).
   */
  async writeSlowly(chunks: readonly Buffer[], pauseMs = 1): Promise<void> {
    for (const chunk of chunks) {
      await new Promise<void>((resolve) => this.socket.write(chunk, () => resolve()));
      await new Promise((resolve) => (pauseMs > 0 ? setTimeout(resolve, pauseMs) : setImmediate(resolve)));
    }
  }

  /**
   * Reads an HTTP response head.
   * @returns the head, or undefined when the connection closed (or `timeoutMs` passed) before a whole
   * head, or the answer does not start with an HTTP/1.x status line (see {@link received}).
   */
  async head(timeoutMs = 20_000): Promise<HttpHead | undefined> {
    const end = await this.waitFor(() => {
      const at = this.buffer.indexOf('\r\n\r\n', this.consumed);
      return at >= 0 ? at : undefined;
    }, timeoutMs);
    if (end === undefined || !this.buffer.subarray(this.consumed, this.consumed + 5).equals(Buffer.from('HTTP/'))) return undefined;
    const text = this.buffer.subarray(this.consumed, end).toString('latin1');
    this.consumed = end + 4;
    const [statusLine = '', ...lines] = text.split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const status = Number(/^HTTP\/\d\.\d (\d{3})/.exec(statusLine)?.[1] ?? NaN);
    return { statusLine, status, headers };
  }

  /**
   * Reads server frames until a close frame, the end of the connection, or `timeoutMs`. A close frame
   * is answered with one of the same code, as a client must, unless `answerClose` is false (the
   * client sent its close frame first, and this one is the answer).
   */
  async frames(timeoutMs = 20_000, answerClose = true): Promise<FramesSeen> {
    const data: Buffer[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const frame = await this.waitFor(() => parseFrame(this.buffer, this.consumed), Math.max(0, deadline - Date.now()));
      if (frame === undefined) return { data: Buffer.concat(data), closeCode: undefined, closeReason: '' };
      this.consumed = frame.next;
      if (frame.opcode === Opcode.CLOSE) {
        const code = frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : undefined;
        const reason = frame.payload.subarray(2).toString('utf8');
        if (answerClose && !this.socket.destroyed) this.socket.write(maskedFrame(frame.payload.subarray(0, 2), Opcode.CLOSE));
        return { data: Buffer.concat(data), closeCode: code, closeReason: reason };
      }
      if (frame.opcode <= 2) data.push(frame.payload);
    }
  }

  /**
   * Reads data frames until `byteCount` payload bytes have arrived.
   * @returns the payload, shorter than `byteCount` when a close frame, the end or `timeoutMs` came first.
   */
  async data(byteCount: number, timeoutMs = 20_000): Promise<Buffer> {
    const data: Buffer[] = [];
    let length = 0;
    const deadline = Date.now() + timeoutMs;
    while (length < byteCount) {
      const frame = await this.waitFor(() => parseFrame(this.buffer, this.consumed), Math.max(0, deadline - Date.now()));
      if (frame === undefined || frame.opcode === Opcode.CLOSE) break;
      this.consumed = frame.next;
      if (frame.opcode > 2) continue;
      data.push(frame.payload);
      length += frame.payload.length;
    }
    return Buffer.concat(data);
  }

  /** Waits until the server closes the connection; false when `timeoutMs` passed first. */
  async waitClosed(timeoutMs = 20_000): Promise<boolean> {
    return (await this.waitFor(() => (this.ended ? true : undefined), timeoutMs)) === true;
  }

  /** Resets the connection at once. */
  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const waker of this.wakers) waker();
  }

  /** Resolves with the first defined result of `check`, re-run on every arrival; undefined at the end or timeout. */
  private waitFor<T>(check: () => T | undefined, timeoutMs: number): Promise<T | undefined> {
    return new Promise((resolve) => {
      const done = (value: T | undefined): void => {
        this.wakers.delete(waker);
        clearTimeout(timer);
        resolve(value);
      };
      const waker = (): void => {
        const value = check();
        if (value !== undefined) done(value);
        else if (this.ended) done(undefined);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      this.wakers.add(waker);
      waker();
    });
  }
}
