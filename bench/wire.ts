// The WebSocket wire (RFC 6455) spoken without a library, for the bench and the tests: client frames
// built and masked, server frames parsed, the opening handshake written byte for byte. On top of it the
// bench's load client (frames built once and written many times) and the integrity check of every byte
// stream; the tests' raw connection (test/helpers/raw-connection.ts) reads the wire with the same parts.
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';

/** Length of the repeating payload pattern: every stream is this pattern from offset 0, repeated. */
export const PERIOD = 1 << 20;
/** Bulk message size (workloads a, e, g). */
export const BULK_MESSAGE = 64 * 1024;
/** Small message size (workloads b, d, f). */
export const SMALL_MESSAGE = 64;

/** Deterministic pseudo-random bytes (xorshift32), so a lost, repeated or reordered piece shows. */
function makePattern(): Buffer {
  const words = new Uint32Array(PERIOD / 4);
  let x = 0x9e3779b9;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return Buffer.from(words.buffer);
}

/** One period of the payload stream. */
export const PATTERN = makePattern();
// Two periods back to back, so that any piece up to one period long compares against one slice.
const DOUBLED = Buffer.concat([PATTERN, PATTERN]);

/** The byte stream lost, gained or changed bytes: the run must fail loudly. */
export class IntegrityError extends Error {}

/**
 * Checks a received stream against the pattern as it arrives: the count, and every byte compared at
 * its offset (a memcmp per chunk, which pinpoints the first wrong byte, where a digest would only say
 * that one is wrong somewhere, at a fraction of a hash's cost on the load core).
 */
export class StreamCheck {
  received = 0;
  constructor(
    readonly expected: number,
    readonly label: string,
  ) {}

  /** Checks the next chunk; throws {@link IntegrityError} on a wrong byte or on bytes beyond the expected count. */
  feed(chunk: Buffer): void {
    if (this.received + chunk.length > this.expected) {
      throw new IntegrityError(`${this.label}: ${this.received + chunk.length} bytes arrived, ${this.expected} expected`);
    }
    for (let done = 0; done < chunk.length; ) {
      const at = this.received % PERIOD;
      const n = Math.min(chunk.length - done, PERIOD);
      const piece = chunk.subarray(done, done + n);
      if (!piece.equals(DOUBLED.subarray(at, at + n))) {
        let i = 0;
        while (piece[i] === DOUBLED[at + i]) i++;
        throw new IntegrityError(`${this.label}: wrong byte at stream offset ${this.received + i}`);
      }
      this.received += n;
      done += n;
    }
  }

  get done(): boolean {
    return this.received === this.expected;
  }

  /** Throws unless every expected byte arrived. */
  assertComplete(): void {
    if (!this.done) throw new IntegrityError(`${this.label}: ${this.received} of ${this.expected} bytes arrived`);
  }
}

/** WebSocket opcodes. */
export const Opcode = { CONTINUATION: 0x0, TEXT: 0x1, BINARY: 0x2, CLOSE: 0x8, PING: 0x9, PONG: 0xa } as const;

let randomPool = Buffer.alloc(0);
let randomAt = 0;

/**
 * `n` bytes from the crypto RNG, taken from a pool refilled 4 KiB at a time: a randomBytes call per
 * masking key and per handshake key was a few percent of the load's CPU per session set up.
 */
function randomPiece(n: number): Buffer {
  if (randomAt + n > randomPool.length) {
    randomPool = randomBytes(4096);
    randomAt = 0;
  }
  randomAt += n;
  return randomPool.subarray(randomAt - n, randomAt);
}

/** A client-to-server frame: FIN, `opcode`, the mask bit, and the payload XORed with a fresh 4-byte key. */
export function maskedFrame(payload: Buffer, opcode: number = Opcode.BINARY): Buffer {
  const length = payload.length;
  const lengthBytes = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const frame = Buffer.allocUnsafe(2 + lengthBytes + 4 + length);
  frame[0] = 0x80 | opcode;
  if (lengthBytes === 0) frame[1] = 0x80 | length;
  else if (lengthBytes === 2) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  const maskAt = 2 + lengthBytes;
  randomPiece(4).copy(frame, maskAt);
  for (let i = 0; i < length; i++) frame[maskAt + 4 + i] = payload[i]! ^ frame[maskAt + (i & 3)]!;
  return frame;
}

/** A client close frame carrying a status code. */
export function closeFrame(code: number): Buffer {
  const payload = Buffer.alloc(2);
  payload.writeUInt16BE(code);
  return maskedFrame(payload, Opcode.CLOSE);
}

/** The fixed part of a frame, as read from its first bytes. */
export interface FrameHeader {
  opcode: number;
  masked: boolean;
  /** Payload length. */
  length: number;
  /** Bytes before the payload: 2, the extended length, and the masking key when masked. */
  size: number;
}

/** Reads the header of the frame at `offset`; undefined when `buffer` does not hold all of it yet. */
export function frameHeader(buffer: Buffer, offset: number): FrameHeader | undefined {
  const available = buffer.length - offset;
  if (available < 2) return undefined;
  const second = buffer[offset + 1]!;
  const masked = (second & 0x80) !== 0;
  let length = second & 0x7f;
  let size = 2;
  if (length === 126) {
    if (available < 4) return undefined;
    length = buffer.readUInt16BE(offset + 2);
    size = 4;
  } else if (length === 127) {
    if (available < 10) return undefined;
    length = Number(buffer.readBigUInt64BE(offset + 2));
    size = 10;
  }
  if (masked) size += 4;
  if (available < size) return undefined;
  return { opcode: buffer[offset]! & 0x0f, masked, length, size };
}

/**
 * One whole frame parsed from `buffer` at `offset`, its payload copied (and unmasked, should a server
 * have masked it); undefined when it is not all there yet. `next` is the offset after it.
 */
export function parseFrame(buffer: Buffer, offset: number): { opcode: number; payload: Buffer; next: number } | undefined {
  const header = frameHeader(buffer, offset);
  if (header === undefined) return undefined;
  const at = offset + header.size;
  if (buffer.length < at + header.length) return undefined;
  const payload = Buffer.from(buffer.subarray(at, at + header.length));
  if (header.masked) {
    const mask = buffer.subarray(at - 4, at);
    for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i & 3]!;
  }
  return { opcode: header.opcode, payload, next: at + header.length };
}

/** The key-derived value a server must answer in `Sec-WebSocket-Accept` (RFC 6455 section 4.2.2). */
export function acceptKey(key: string): string {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
}

/** Options for {@link handshakeRequest}; each field left out takes the valid default. */
export interface HandshakeParts {
  method?: string;
  path?: string;
  /** The request line's version, `HTTP/1.1` by default. */
  httpVersion?: string;
  /** `Host`; default '127.0.0.1'. */
  host?: string;
  /** `Sec-WebSocket-Protocol` value; null omits the header. Default none. */
  protocol?: string | null;
  /** `Sec-WebSocket-Version`; null omits it. Default '13'. */
  version?: string | null;
  /** `Sec-WebSocket-Key`; null omits it. Default a valid random key. */
  key?: string | null;
  /** `Upgrade`; null omits it. Default 'websocket'. */
  upgrade?: string | null;
  /** `Connection`; null omits it. Default 'Upgrade'. */
  connection?: string | null;
  /** More header lines, written as given. */
  extra?: readonly string[];
}

/** Builds a WebSocket opening handshake request (valid unless `parts` says otherwise). */
export function handshakeRequest(parts: HandshakeParts = {}): string {
  const line = (name: string, value: string | null | undefined): string[] => (value == null ? [] : [`${name}: ${value}`]);
  const lines = [
    `${parts.method ?? 'GET'} ${parts.path ?? '/'} ${parts.httpVersion ?? 'HTTP/1.1'}`,
    `Host: ${parts.host ?? '127.0.0.1'}`,
    ...line('Upgrade', parts.upgrade === undefined ? 'websocket' : parts.upgrade),
    ...line('Connection', parts.connection === undefined ? 'Upgrade' : parts.connection),
    ...line('Sec-WebSocket-Key', parts.key === undefined ? randomPiece(16).toString('base64') : parts.key),
    ...line('Sec-WebSocket-Version', parts.version === undefined ? '13' : parts.version),
    ...line('Sec-WebSocket-Protocol', parts.protocol),
    ...(parts.extra ?? []),
  ];
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/** Frames for one period of the pattern cut into `messageSize` messages, concatenated, and where each starts. */
function framesForPeriod(messageSize: number): { buffer: Buffer; frameLength: number } {
  const frames: Buffer[] = [];
  for (let at = 0; at < PERIOD; at += messageSize) frames.push(maskedFrame(PATTERN.subarray(at, at + messageSize)));
  return { buffer: Buffer.concat(frames), frameLength: frames[0]!.length };
}

/** One period as 16 masked 64 KiB frames, written whole per period. */
export const BULK_FRAMES = framesForPeriod(BULK_MESSAGE).buffer;
const small = framesForPeriod(SMALL_MESSAGE);
/** One period as 16,384 masked 64-byte frames; frame k starts at k * SMALL_FRAME_LENGTH. */
export const SMALL_FRAMES = small.buffer;
/** Length of one 64-byte message's frame (2 header + 4 mask + 64). */
export const SMALL_FRAME_LENGTH = small.frameLength;

/**
 * What goes on the wire for `count` messages of `size` bytes starting at message `first` of the
 * stream: frames for a WebSocket subject, the bare payload for a TCP one. Stays within one period.
 */
export function wireSlice(framed: boolean, size: number, first: number, count: number): Buffer {
  const perPeriod = PERIOD / size;
  const start = first % perPeriod;
  if (start + count > perPeriod) throw new RangeError('wireSlice crosses a period');
  if (!framed) return PATTERN.subarray(start * size, (start + count) * size);
  if (size === BULK_MESSAGE)
    return BULK_FRAMES.subarray(start * (BULK_FRAMES.length / perPeriod), (start + count) * (BULK_FRAMES.length / perPeriod));
  return SMALL_FRAMES.subarray(start * SMALL_FRAME_LENGTH, (start + count) * SMALL_FRAME_LENGTH);
}

/**
 * Parses server-to-client frames (unmasked, per RFC 6455) from a byte stream and hands on data frame
 * payloads without copying. Control frames are collected whole.
 */
export class FrameReader {
  private remaining = 0;
  private opcode = 0;
  private partial: Buffer | undefined;
  private control: Buffer[] = [];

  constructor(
    private readonly onData: (payload: Buffer) => void,
    private readonly onControl: (opcode: number, payload: Buffer) => void,
  ) {}

  feed(chunk: Buffer): void {
    let buf = chunk;
    if (this.partial) {
      buf = Buffer.concat([this.partial, chunk]);
      this.partial = undefined;
    }
    let i = 0;
    while (i < buf.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, buf.length - i);
        const piece = buf.subarray(i, i + n);
        this.remaining -= n;
        i += n;
        if (this.opcode < 8) this.onData(piece);
        else {
          // Copied: the chunk's memory may be reused once this call returns (a reused read buffer).
          this.control.push(Buffer.from(piece));
          if (this.remaining === 0) this.endControl();
        }
        continue;
      }
      const header = frameHeader(buf, i);
      if (header === undefined) break;
      if (header.masked) throw new IntegrityError('server sent a masked frame');
      if (header.opcode === Opcode.TEXT) throw new IntegrityError('server sent a text frame to a binary session');
      // A continuation keeps the data opcode of the frame it continues.
      if (header.opcode !== Opcode.CONTINUATION) this.opcode = header.opcode;
      this.remaining = header.length;
      i += header.size;
      if (header.length === 0 && this.opcode >= 8) this.endControl();
    }
    if (i < buf.length) this.partial = Buffer.from(buf.subarray(i));
  }

  private endControl(): void {
    const payload = Buffer.concat(this.control);
    this.control = [];
    this.onControl(this.opcode, payload);
  }
}

/** A client connection to a subject, framed (WebSocket) or bare (TCP), plain or TLS. */
export interface ClientSession {
  socket: net.Socket;
  framed: boolean;
  /**
   * Receives every payload byte from the subject; replace it to route the stream elsewhere. Bytes that
   * arrive before it is first set are held for the first one set.
   */
  onPayload: (chunk: Buffer) => void;
  /** Set when the subject closed (close frame or FIN). */
  closed: Promise<void>;
  /**
   * Graceful close (close frame, or FIN), resolved when the socket is fully closed. A reset from the
   * subject while closing ends the session too (Python's TLS close does that): noted in `resetOnClose`.
   */
  close(timeoutMs?: number): Promise<void>;
  resetOnClose: boolean;
}

/**
 * Where plain client sockets read into (net's `onread`), one buffer for all: the load allocates
 * nothing per read, so its garbage collector does not stall it (mark-compacts of 10-20 ms every few
 * hundred ms at 1,000 sessions receiving 125 MiB/s, which showed in every probe's p99). Each read is
 * handled to the end before the next lands in it: whatever keeps bytes beyond that copies them.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** How to reach a subject. */
export interface Endpoint {
  port: number;
  framed: boolean;
  tls: boolean;
}

/**
 * Connects to a subject and, for a WebSocket subject, completes the opening handshake (subprotocol
 * `binary`, accept key verified). Resolves when payload can flow; rejects after `timeoutMs`.
 * @param failed told of an error after the session opened (a wrong byte, a reset).
 */
export function connectClient(endpoint: Endpoint, failed: (err: Error) => void, timeoutMs = 10000): Promise<ClientSession> {
  return new Promise((resolve, reject) => {
    const options = { host: '127.0.0.1', port: endpoint.port, noDelay: true };
    // Each chunk read goes to `receive`: the handshake response's parser, then the frame reader (or,
    // without framing, the payload handler). TLS sockets have no onread: they emit 'data'.
    let receive: (chunk: Buffer) => void = () => undefined;
    const socket = endpoint.tls
      ? tls.connect({ ...options, rejectUnauthorized: false }).on('data', (chunk: Buffer) => receive(chunk))
      : net.connect({
          ...options,
          onread: {
            buffer: READ_BUFFER,
            callback: (n) => {
              receive(READ_BUFFER.subarray(0, n));
              return true;
            },
          },
        });
    let settled = false;
    const timer = setTimeout(() => fail(new Error(`session not open after ${timeoutMs} ms`)), timeoutMs);
    let closing = false;
    let closedResolve!: () => void;
    const closed = new Promise<void>((r) => (closedResolve = r));
    // A target that speaks first (a VNC server) can have its bytes in the same read as the 101 response:
    // they are parsed before this promise has resolved to the caller, who has set no handler yet.
    let handler: ((chunk: Buffer) => void) | undefined;
    let early: Buffer[] = [];
    const hold = (chunk: Buffer): void => void early.push(Buffer.from(chunk));
    const session: ClientSession = {
      socket,
      framed: endpoint.framed,
      get onPayload() {
        return handler ?? hold;
      },
      set onPayload(next) {
        handler = next;
        const held = early;
        early = [];
        for (const chunk of held) deliver(chunk);
      },
      closed,
      resetOnClose: false,
      close: (timeoutMs = 5000) => {
        if (socket.destroyed) return Promise.resolve();
        closing = true;
        if (endpoint.framed) socket.write(closeFrame(1000));
        else socket.end();
        return new Promise<void>((done, fail) => {
          const timer = setTimeout(() => {
            socket.destroy();
            fail(new Error(`subject did not close a session within ${timeoutMs} ms`));
          }, timeoutMs);
          socket.once('close', () => {
            clearTimeout(timer);
            done();
          });
        });
      },
    };
    const fail = (err: Error): void => {
      socket.destroy();
      clearTimeout(timer);
      if (closing) {
        session.resetOnClose = true;
        return;
      }
      if (!settled) {
        settled = true;
        reject(err);
      } else failed(err);
    };
    const open = (): void => {
      settled = true;
      clearTimeout(timer);
      resolve(session);
    };
    socket.on('error', fail);
    socket.on('close', () => {
      closedResolve();
      if (!settled) fail(new Error('connection closed before the session opened'));
    });
    const deliver = (chunk: Buffer): void => {
      try {
        session.onPayload(chunk);
      } catch (err) {
        fail(err as Error);
      }
    };
    const ready = endpoint.tls ? 'secureConnect' : 'connect';
    // Our FIN, once: after a close frame and again at the subject's FIN, a second end() would build an
    // error object that nobody reads.
    const finish = (): void => {
      if (!socket.writableEnded) socket.end();
    };
    socket.on('end', finish);
    if (!endpoint.framed) {
      socket.once(ready, open);
      receive = deliver;
      return;
    }
    const key = randomPiece(16).toString('base64');
    socket.once(ready, () => {
      socket.write(handshakeRequest({ host: `127.0.0.1:${endpoint.port}`, key, protocol: 'binary' }));
    });
    const reader = new FrameReader(deliver, (opcode) => {
      // A close frame: our reply is the FIN that follows (the subject has closed its side already).
      if (opcode === Opcode.CLOSE) finish();
    });
    const frames = (chunk: Buffer): void => {
      try {
        reader.feed(chunk);
      } catch (err) {
        fail(err as Error);
      }
    };
    let head = Buffer.alloc(0);
    receive = (chunk) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 16384) fail(new Error('handshake response too long'));
        return;
      }
      const text = head.subarray(0, end).toString('latin1');
      if (!text.startsWith('HTTP/1.1 101')) {
        fail(new Error(`handshake refused: ${text.split('\r\n')[0]}`));
        return;
      }
      const acceptLine = text.split('\r\n').find((line) => line.toLowerCase().startsWith('sec-websocket-accept:'));
      if (acceptLine?.slice(acceptLine.indexOf(':') + 1).trim() !== acceptKey(key)) {
        fail(new Error('handshake: wrong Sec-WebSocket-Accept'));
        return;
      }
      receive = frames;
      open();
      const rest = head.subarray(end + 4);
      if (rest.length > 0) frames(rest);
    };
  });
}

/** Resolves on 'drain'; rejects when the socket closes first. */
export function drained(socket: net.Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = (): void => {
      socket.removeListener('close', onClose);
      resolve();
    };
    const onClose = (): void => {
      socket.removeListener('drain', onDrain);
      reject(new Error('socket closed while writing'));
    };
    socket.once('drain', onDrain);
    socket.once('close', onClose);
  });
}

/** Writes `count` pieces from `piece(i)`, waiting for 'drain' whenever the socket's buffer is full. */
export async function pump(socket: net.Socket, count: number, piece: (i: number) => Buffer): Promise<void> {
  for (let i = 0; i < count; i++) {
    if (!socket.write(piece(i))) await drained(socket);
  }
}
