/**
 * Websock: a WebSocket (or RTCDataChannel) wrapper with a receive queue and a send queue, API-compatible
 * with noVNC's `Websock` and with the older websockify `include/websock.js` (`send`, `send_string`).
 *
 * The `message` event carries no data: it tells that bytes were queued, and the `rQ*` methods read them.
 * Bytes travel in binary frames, or as base64 in text frames when the server chose the `base64`
 * subprotocol.
 *
 * This file runs in browsers and in Node tests, so it names no DOM or Node type: the channel is described
 * by the small {@link WebsockChannel} interface, which a browser `WebSocket`, an `RTCDataChannel` and the
 * `ws` package's client all satisfy.
 */

/** The default limit on unread bytes in the receive queue: 64 MiB. */
export const DEFAULT_MAX_QUEUE_BYTES = 64 * 1024 * 1024;

/**
 * Subprotocols offered by {@link Websock.open} when none are given. Python websockify picks `binary` when
 * offered (and offers nothing else; a browser fails a handshake that offered protocols and got none back),
 * this proxy picks `binary` whenever offered, and servers that speak only the old `base64` encoding pick
 * that: the list works with all three.
 */
export const DEFAULT_PROTOCOLS: readonly string[] = ['binary', 'base64'];

// Capacities the queues start with; the receive queue doubles from there as needed.
const INITIAL_RQ_BYTES = 64 * 1024;
const INITIAL_SQ_BYTES = 10 * 1024;
// String.fromCharCode.apply takes its arguments on the stack: convert in slices this long.
const STRING_SLICE = 4096;

/**
 * What Websock needs of a channel: the handler properties, `send`, `close`, `binaryType`, `protocol` and
 * `readyState` (numeric as a WebSocket's, or a string as an RTCDataChannel's).
 */
export interface WebsockChannel {
  binaryType: string;
  readonly protocol: string;
  readonly readyState: number | string;
  send(data: string): void;
  send(data: Uint8Array<ArrayBuffer>): void;
  close(): void;
  // `never` parameters: any handler type is assignable here, the DOM's MessageEvent-taking ones included.
  onopen: ((event: never) => unknown) | null;
  onmessage: ((event: never) => unknown) | null;
  onclose: ((event: never) => unknown) | null;
  onerror: ((event: never) => unknown) | null;
}

/** The close event as the channel reports it (an RTCDataChannel's has no code, reason or wasClean). */
export interface WebsockCloseEvent {
  readonly code?: number;
  readonly reason?: string;
  readonly wasClean?: boolean;
}

/** Handler signatures, by event name, for {@link Websock.on}. */
export interface WebsockHandlers {
  /** The channel opened. */
  open: () => void;
  /** Bytes were added to the receive queue (no payload: read them with the rQ methods). */
  message: () => void;
  /** The channel closed. */
  close: (event: WebsockCloseEvent) => void;
  /** The channel's error event, or the Error that made Websock close it (queue limit, bad base64). */
  error: (error: unknown) => void;
}

/** Options of the {@link Websock} constructor (noVNC calls it without any). */
export interface WebsockOptions {
  /** Unread bytes the receive queue may hold before Websock closes the channel and throws. */
  maxQueueBytes?: number;
}

/** `readyState` values of {@link Websock}. */
export type WebsockReadyState = 'unused' | 'connecting' | 'open' | 'closing' | 'closed' | 'unknown';

// WebSocket readyState numbers and RTCDataChannel readyState strings, by Websock state.
const READY_STATES: ReadonlyMap<number | string, WebsockReadyState> = new Map<number | string, WebsockReadyState>([
  [0, 'connecting'],
  [1, 'open'],
  [2, 'closing'],
  [3, 'closed'],
  ['connecting', 'connecting'],
  ['open', 'open'],
  ['closing', 'closing'],
  ['closed', 'closed'],
]);

const BASE64_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const BASE64_CODES = new Uint8Array(64).map((_, i) => BASE64_CHARS.charCodeAt(i));
// Character code -> 6-bit value, 255 for characters outside the alphabet.
const BASE64_VALUES = new Uint8Array(128).fill(255);
for (let i = 0; i < 64; i++) BASE64_VALUES[BASE64_CHARS.charCodeAt(i)] = i;

const noop = (): void => undefined;

/** Bytes as a string of the characters with those codes (Latin-1). */
function bytesToLatin1(bytes: Uint8Array): string {
  let text = '';
  for (let i = 0; i < bytes.length; i += STRING_SLICE) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + STRING_SLICE) as unknown as number[]);
  }
  return text;
}

/** Standard base64 with padding, as websockify sends and expects. */
function encodeBase64(bytes: Uint8Array): string {
  const out = new Uint8Array(Math.ceil(bytes.length / 3) * 4);
  let o = 0;
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out[o++] = BASE64_CODES[n >> 18]!;
    out[o++] = BASE64_CODES[(n >> 12) & 63]!;
    out[o++] = BASE64_CODES[(n >> 6) & 63]!;
    out[o++] = BASE64_CODES[n & 63]!;
  }
  const left = bytes.length - i;
  if (left > 0) {
    const n = (bytes[i]! << 16) | (left === 2 ? bytes[i + 1]! << 8 : 0);
    out[o++] = BASE64_CODES[n >> 18]!;
    out[o++] = BASE64_CODES[(n >> 12) & 63]!;
    out[o++] = left === 2 ? BASE64_CODES[(n >> 6) & 63]! : 61;
    out[o++] = 61;
  }
  return bytesToLatin1(out);
}

/**
 * The receive and send queues over one channel. Reads past the queued bytes throw a RangeError (noVNC's
 * would return garbage): call {@link Websock.rQwait} first.
 */
export default class Websock {
  private _channel: WebsockChannel | null = null;
  private readonly _maxQueue: number;
  private readonly _handlers: WebsockHandlers = { open: noop, message: noop, close: noop, error: noop };
  // Receive queue: unread bytes are _rQ[_rQi .. _rQlen).
  private _rQ = new Uint8Array(0);
  private _rQi = 0;
  private _rQlen = 0;
  // Send queue: pending bytes are _sQ[0 .. _sQlen).
  private _sQ = new Uint8Array(INITIAL_SQ_BYTES);
  private _sQlen = 0;

  /**
   * An unused Websock: call open() or attach() next.
   * @throws RangeError when `maxQueueBytes` is not a positive integer
   */
  constructor(options: WebsockOptions = {}) {
    const max = options.maxQueueBytes ?? DEFAULT_MAX_QUEUE_BYTES;
    if (!Number.isInteger(max) || max < 1) throw new RangeError(`Websock maxQueueBytes must be a positive integer, not ${max}`);
    this._maxQueue = max;
  }

  /** 'unused' before open/attach, then the channel's state: 'connecting', 'open', 'closing' or 'closed'. */
  get readyState(): WebsockReadyState {
    if (this._channel === null) return 'unused';
    return READY_STATES.get(this._channel.readyState) ?? 'unknown';
  }

  /** The subprotocol the server chose ('' for none, or before the channel opens). */
  get protocol(): string {
    return this._channel?.protocol ?? '';
  }

  /** How bytes travel: base64 text frames when the server chose `base64`, else binary frames. */
  get encoding(): 'binary' | 'base64' {
    return this.protocol === 'base64' ? 'base64' : 'binary';
  }

  /** The receive queue's current capacity in bytes (it grows by doubling, up to `maxQueueBytes`). */
  get rQbufferSize(): number {
    return this._rQ.length;
  }

  // ---- Events

  /** Sets the handler of an event, replacing the previous one. */
  on<K extends keyof WebsockHandlers>(event: K, handler: WebsockHandlers[K]): void {
    this._handlers[event] = handler;
  }

  /** Removes the handler of an event. */
  off(event: keyof WebsockHandlers): void {
    this._handlers[event] = noop;
  }

  // ---- Connection

  /**
   * Opens a WebSocket to `uri` and attaches it. Without `protocols`, offers {@link DEFAULT_PROTOCOLS};
   * pass `[]` to offer none.
   * @throws Error when the environment has no global WebSocket (Node 20: attach a `ws` client instead)
   */
  open(uri: string, protocols: string | string[] = [...DEFAULT_PROTOCOLS]): void {
    const WebSocketClass = (globalThis as unknown as { WebSocket?: new (uri: string, protocols: string | string[]) => WebsockChannel })
      .WebSocket;
    if (WebSocketClass === undefined) throw new Error('Websock.open: no global WebSocket here; attach() a channel instead');
    this.attach(new WebSocketClass(uri, protocols));
  }

  /**
   * Uses `channel` (a WebSocket or an RTCDataChannel, connecting or open), with empty queues. A channel
   * attached before is silenced.
   * @throws TypeError when `channel` lacks `send` or `close`
   */
  attach(channel: WebsockChannel): void {
    if (typeof channel?.send !== 'function' || typeof channel.close !== 'function') {
      throw new TypeError('Websock.attach: the channel must be a WebSocket or an RTCDataChannel (no send/close method)');
    }
    if (this._channel !== null) this._silence(this._channel);
    this._rQ = new Uint8Array(Math.min(INITIAL_RQ_BYTES, this._maxQueue));
    this._rQi = 0;
    this._rQlen = 0;
    this._sQ = new Uint8Array(INITIAL_SQ_BYTES);
    this._sQlen = 0;
    this._channel = channel;
    channel.binaryType = 'arraybuffer';
    channel.onopen = () => this._handlers.open();
    channel.onmessage = (event: { data: unknown }) => this._receive(event.data);
    channel.onclose = (event: WebsockCloseEvent) => this._handlers.close(event);
    channel.onerror = (event: unknown) => this._handlers.error(event);
  }

  /** Closes the channel if it is connecting or open; data arriving afterwards is dropped. */
  close(): void {
    const channel = this._channel;
    if (channel === null) return;
    if (this.readyState === 'connecting' || this.readyState === 'open') channel.close();
    // The 'close' event still comes: only incoming data stops.
    channel.onmessage = null;
  }

  // ---- Receive queue

  /** The number of unread bytes. */
  rQlen(): number {
    return this._rQlen - this._rQi;
  }

  /** The next byte, left in the queue. */
  rQpeek8(): number {
    this._need(1);
    return this._rQ[this._rQi]!;
  }

  /** Drops `len` bytes. */
  rQskipBytes(len: number): void {
    this._need(len);
    this._rQi += len;
  }

  /** Reads an unsigned byte. */
  rQshift8(): number {
    this._need(1);
    return this._rQ[this._rQi++]!;
  }

  /** Reads an unsigned big-endian 16-bit value. */
  rQshift16(): number {
    this._need(2);
    const q = this._rQ;
    const i = this._rQi;
    this._rQi = i + 2;
    return (q[i]! << 8) | q[i + 1]!;
  }

  /** Reads an unsigned big-endian 32-bit value (0xffffffff stays 4294967295). */
  rQshift32(): number {
    this._need(4);
    const q = this._rQ;
    const i = this._rQi;
    this._rQi = i + 4;
    return ((q[i]! << 24) | (q[i + 1]! << 16) | (q[i + 2]! << 8) | q[i + 3]!) >>> 0;
  }

  /** Reads `len` bytes (all queued by default) as a string of the characters with those codes (Latin-1). */
  rQshiftStr(len: number = this.rQlen()): string {
    return bytesToLatin1(this.rQshiftBytes(len, false));
  }

  /**
   * Reads `len` bytes (all queued by default): a copy, or with `copy` false a view into the queue that is
   * valid only until the next message arrives.
   */
  rQshiftBytes(len: number = this.rQlen(), copy = true): Uint8Array {
    const bytes = this.rQpeekBytes(len, copy);
    this._rQi += len;
    return bytes;
  }

  /** Reads `len` bytes into the start of `target`. */
  rQshiftTo(target: Uint8Array, len: number): void {
    this._need(len);
    target.set(this._rQ.subarray(this._rQi, this._rQi + len));
    this._rQi += len;
  }

  /** The next `len` bytes, left in the queue: a copy, or with `copy` false a view (see rQshiftBytes). */
  rQpeekBytes(len: number, copy = true): Uint8Array {
    this._need(len);
    return copy ? this._rQ.slice(this._rQi, this._rQi + len) : this._rQ.subarray(this._rQi, this._rQi + len);
  }

  /**
   * Whether to wait for more data: true when fewer than `num` bytes are queued, after putting back the
   * `goback` bytes just read (so that the message is parsed again from its start when more arrives).
   * @param msg names the message being parsed, for the error
   * @throws Error when fewer than `goback` bytes were read
   */
  rQwait(msg: string, num: number, goback?: number): boolean {
    if (this._rQlen - this._rQi >= num) return false;
    if (goback) {
      if (this._rQi < goback) throw new Error(`Websock.rQwait(${msg}): cannot put back ${goback} bytes, only ${this._rQi} were read`);
      this._rQi -= goback;
    }
    return true;
  }

  // ---- Send queue

  /** Queues a byte (the low 8 bits of `num`). */
  sQpush8(num: number): void {
    this._sQreserve(1);
    this._sQ[this._sQlen++] = num;
  }

  /** Queues a big-endian 16-bit value. */
  sQpush16(num: number): void {
    this._sQreserve(2);
    this._sQ[this._sQlen++] = num >> 8;
    this._sQ[this._sQlen++] = num;
  }

  /** Queues a big-endian 32-bit value. */
  sQpush32(num: number): void {
    this._sQreserve(4);
    this._sQ[this._sQlen++] = num >>> 24;
    this._sQ[this._sQlen++] = num >> 16;
    this._sQ[this._sQlen++] = num >> 8;
    this._sQ[this._sQlen++] = num;
  }

  /** Queues the character codes of `str` as bytes (Latin-1: each code's low 8 bits). */
  sQpushString(str: string): void {
    const bytes = new Uint8Array(str.length);
    for (let i = 0; i < str.length; i++) bytes[i] = str.charCodeAt(i);
    this.sQpushBytes(bytes);
  }

  /** Queues bytes; when the channel is open and the queue fills, full queues are sent as they fill. */
  sQpushBytes(bytes: Uint8Array): void {
    for (let offset = 0; offset < bytes.length; ) {
      this._sQreserve(bytes.length - offset);
      const count = Math.min(this._sQ.length - this._sQlen, bytes.length - offset);
      this._sQ.set(bytes.subarray(offset, offset + count), this._sQlen);
      this._sQlen += count;
      offset += count;
    }
  }

  /** Sends the queued bytes as one message if the channel is open; otherwise they stay queued. */
  flush(): void {
    const channel = this._channel;
    if (this._sQlen === 0 || channel === null || this.readyState !== 'open') return;
    const pending = this._sQ.subarray(0, this._sQlen);
    this._sQlen = 0;
    // A copy for binary frames: the queue is reused, and a channel may keep what it is given (ws queues it).
    if (channel.protocol === 'base64') channel.send(encodeBase64(pending));
    else channel.send(pending.slice());
  }

  /** Old websockify API: queues `arr` (bytes, or numbers whose low 8 bits are sent) and flushes. */
  send(arr: ArrayLike<number>): void {
    this.sQpushBytes(arr instanceof Uint8Array ? arr : Uint8Array.from(arr));
    this.flush();
  }

  /** Old websockify API: queues the character codes of `str` (Latin-1) and flushes. */
  send_string(str: string): void {
    this.sQpushString(str);
    this.flush();
  }

  // ---- Internals

  private _need(len: number): void {
    if (this._rQlen - this._rQi < len) {
      throw new RangeError(`Websock: ${len} bytes wanted, ${this._rQlen - this._rQi} queued (check with rQwait first)`);
    }
  }

  /**
   * Makes room for `n` more bytes at the end of the receive queue. Compacts (moves the unread bytes to the
   * front) when that leaves at least half the buffer free, else doubles it: each byte copied is paid for
   * by at least as many new bytes arriving, so copying stays linear in the traffic (only at the limit
   * does compaction happen with less room to spare).
   * @throws Error past the limit
   */
  private _rQreserve(n: number): void {
    if (this._rQi === this._rQlen) {
      this._rQi = 0;
      this._rQlen = 0;
    }
    if (this._rQlen + n <= this._rQ.length) return;
    const unread = this._rQlen - this._rQi;
    const needed = unread + n;
    if (needed > this._maxQueue) {
      throw new Error(
        `Websock receive queue limit exceeded: ${unread} unread bytes + ${n} arriving > ${this._maxQueue} bytes (maxQueueBytes); closing`,
      );
    }
    if (needed <= this._rQ.length / 2 || this._rQ.length === this._maxQueue) {
      this._rQ.copyWithin(0, this._rQi, this._rQlen);
    } else {
      let size = this._rQ.length * 2;
      while (size < needed * 2) size *= 2;
      const grown = new Uint8Array(Math.min(size, this._maxQueue));
      grown.set(this._rQ.subarray(this._rQi, this._rQlen));
      this._rQ = grown;
    }
    this._rQi = 0;
    this._rQlen = unread;
  }

  /** Appends a message's bytes (binary frame) or decoded base64 (text frame) and notifies. */
  private _receive(data: unknown): void {
    try {
      if (typeof data === 'string') this._receiveBase64(data);
      else if (data instanceof ArrayBuffer) this._receiveBytes(new Uint8Array(data));
      else if (ArrayBuffer.isView(data)) this._receiveBytes(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
      else
        throw new TypeError(
          `Websock: unsupported message data (${Object.prototype.toString.call(data)}); binaryType must be 'arraybuffer'`,
        );
    } catch (error) {
      this._fail(error);
      throw error;
    }
    if (this._rQlen > this._rQi) this._handlers.message();
  }

  private _receiveBytes(bytes: Uint8Array): void {
    this._rQreserve(bytes.length);
    this._rQ.set(bytes, this._rQlen);
    this._rQlen += bytes.length;
  }

  /** Decodes straight into the queue; padding is optional, characters outside the alphabet are refused. */
  private _receiveBase64(text: string): void {
    let end = text.length;
    while (end > 0 && end > text.length - 2 && text.charCodeAt(end - 1) === 61) end--;
    const rest = end % 4;
    if (rest === 1 || (end < text.length && (text.length % 4 !== 0 || rest === 0))) {
      throw new Error(`Websock: a text frame of ${text.length} characters is not valid base64 (bad length or padding)`);
    }
    const size = (end - rest) * 0.75 + (rest === 0 ? 0 : rest - 1);
    this._rQreserve(size);
    const q = this._rQ;
    let o = this._rQlen;
    let bits = 0;
    let count = 0;
    for (let i = 0; i < end; i++) {
      const code = text.charCodeAt(i);
      const value = code < 128 ? BASE64_VALUES[code]! : 255;
      if (value === 255) throw new Error(`Websock: a text frame is not valid base64 (character code ${code} at ${i})`);
      bits = (bits << 6) | value;
      if (++count === 4) {
        q[o++] = bits >> 16;
        q[o++] = bits >> 8;
        q[o++] = bits;
        bits = 0;
        count = 0;
      }
    }
    if (count === 3) {
      q[o++] = bits >> 10;
      q[o++] = bits >> 2;
    } else if (count === 2) {
      q[o++] = bits >> 4;
    }
    this._rQlen = o;
  }

  /**
   * Makes room for `n` more bytes in the send queue: sends what is queued if the channel is open (then
   * sQpushBytes sends the rest in queue-sized messages), else doubles the queue until they fit.
   */
  private _sQreserve(n: number): void {
    if (this._sQ.length - this._sQlen >= n) return;
    this.flush();
    if (this._sQlen === 0) return;
    let size = this._sQ.length * 2;
    while (size - this._sQlen < n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this._sQ.subarray(0, this._sQlen));
    this._sQ = grown;
  }

  /** Stops reading, closes the channel and reports `error` (the caller then throws it). */
  private _fail(error: unknown): void {
    this.close();
    this._handlers.error(error);
  }

  private _silence(channel: WebsockChannel): void {
    channel.onopen = null;
    channel.onmessage = null;
    channel.onclose = null;
    channel.onerror = null;
  }
}
