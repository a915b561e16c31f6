// Targets and measurements shared by the bridge tests: one-way servers that hash what they move, a
// backpressure-aware sender, and the proxy's memory from /proc.
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type net from 'node:net';
import type { WebSocket } from 'ws';
import { startServer, type TestServer } from '../helpers/targets.js';

/** SHA-256 of some bytes, hex. */
export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Promises handed out in order: the n-th take() gets the n-th put(), whichever comes first. */
class Queue<T> {
  private readonly items: Array<Promise<T>> = [];
  private readonly waiting: Array<(item: Promise<T>) => void> = [];
  put(item: Promise<T>): void {
    // Rejections are reported to whoever takes the item; until then they must not be unhandled.
    item.catch(() => undefined);
    const waiter = this.waiting.shift();
    if (waiter) waiter(item);
    else this.items.push(item);
  }
  take(): Promise<T> {
    const item = this.items.shift();
    return item ?? new Promise<T>((resolve, reject) => this.waiting.push((next) => next.then(resolve, reject)));
  }
}

/** What an upload sink saw on one connection. */
export interface SinkResult {
  bytes: number;
  sha256: string;
  /** Whether the sink's own socket could still be written when the proxy's FIN arrived (a half-close). */
  writableAtEnd: boolean;
}

/** An upload sink: hashes everything a connection sends and reports it at the connection's end. */
export interface Sink extends TestServer {
  /** Resolves with the next connection's result (connections in accept order). */
  nextResult(): Promise<SinkResult>;
}

/**
 * Starts an upload sink. Each connection is read to its end, then closed from the sink's side.
 * @param slow when given, reading is paused in bursts: after each `burstBytes` the socket is paused for
 * `pauseMs`, so the proxy has to hold the client back.
 */
export async function startSink(slow?: { burstBytes: number; pauseMs: number }): Promise<Sink> {
  const results = new Queue<SinkResult>();
  const server = await startServer((socket) => {
    results.put(
      new Promise((resolve, reject) => {
        const hash = createHash('sha256');
        let bytes = 0;
        let sinceBurst = 0;
        socket.on('data', (chunk: Buffer) => {
          hash.update(chunk);
          bytes += chunk.length;
          sinceBurst += chunk.length;
          if (slow && sinceBurst >= slow.burstBytes) {
            sinceBurst = 0;
            socket.pause();
            setTimeout(() => socket.resume(), slow.pauseMs);
          }
        });
        socket.once('end', () => {
          resolve({ bytes, sha256: hash.digest('hex'), writableAtEnd: socket.writable && !socket.writableEnded });
          socket.end();
        });
        socket.once('error', reject);
      }),
    );
  });
  return { ...server, nextResult: () => results.take() };
}

/** A download source: each connection gets fresh random bytes, then the source's FIN. */
export interface Source extends TestServer {
  /** Resolves with what the next connection was sent (connections in accept order), once it is all written. */
  nextSent(): Promise<{ bytes: number; sha256: string }>;
}

/**
 * Starts a download source that writes random bytes to every connection (respecting the socket's
 * backpressure, in chunks of random length) and then ends it.
 * @param size how many bytes; a function is asked afresh for each connection.
 */
export async function startSource(size: number | (() => number)): Promise<Source> {
  const sent = new Queue<{ bytes: number; sha256: string }>();
  const server = await startServer((socket) => {
    sent.put(
      writeRandom(socket, typeof size === 'number' ? size : size()).then((result) => {
        socket.end();
        return result;
      }),
    );
  });
  return { ...server, nextSent: () => sent.take() };
}

/**
 * Writes `size` random bytes to a socket in chunks of random length (1 byte to 1 MiB), waiting for
 * 'drain' when the socket asks for it, and resolves with their count and hash.
 */
export async function writeRandom(socket: net.Socket, size: number): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let left = size;
  while (left > 0) {
    const chunk = randomBytes(Math.min(left, 1 + Math.floor(Math.random() * 1024 * 1024)));
    hash.update(chunk);
    left -= chunk.length;
    if (!socket.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = (): void => {
          socket.off('close', onClose);
          resolve();
        };
        const onClose = (): void => {
          socket.off('drain', onDrain);
          reject(new Error(`socket closed with ${left} bytes unwritten`));
        };
        socket.once('drain', onDrain);
        socket.once('close', onClose);
      });
    }
  }
  return { bytes: size, sha256: hash.digest('hex') };
}

/**
 * Sends `data` from a WebSocket client in messages of random size up to `maxMessage`, as binary frames or
 * as base64 text frames. Resolves once all is handed to the socket.
 */
export async function sendAll(ws: WebSocket, data: Buffer, options: { base64?: boolean; maxMessage?: number } = {}): Promise<void> {
  const max = options.maxMessage ?? 256 * 1024;
  for (let offset = 0; offset < data.length; ) {
    const end = Math.min(data.length, offset + 1 + Math.floor(Math.random() * max));
    await sendPaced(ws, data.subarray(offset, end), options.base64 ?? false);
    offset = end;
  }
}

/**
 * Sends `size` fresh random bytes from a WebSocket client in binary messages of 1 MiB, generated as it
 * goes so that the test process does not hold them all, and resolves with their hash once all are
 * handed to the socket.
 */
export async function sendRandom(ws: WebSocket, size: number): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  for (let left = size; left > 0; ) {
    const chunk = randomBytes(Math.min(left, 1024 * 1024));
    hash.update(chunk);
    left -= chunk.length;
    await sendPaced(ws, chunk, false);
  }
  return { bytes: size, sha256: hash.digest('hex') };
}

/** The client's own send buffer above which {@link sendAll} and {@link sendRandom} wait. */
export const CLIENT_BUFFER_LIMIT = 4 * 1024 * 1024;

/**
 * Sends one message; when more than {@link CLIENT_BUFFER_LIMIT} bytes then wait in the client's send
 * buffer, resolves only once this message is flushed, so the sender respects the proxy's backpressure.
 */
function sendPaced(ws: WebSocket, piece: Buffer, base64: boolean): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    ws.send(base64 ? piece.toString('base64') : piece, { binary: !base64 }, (err) => (err ? reject(err) : resolve()));
    if (ws.bufferedAmount <= CLIENT_BUFFER_LIMIT) resolve();
  });
}

/**
 * Makes a WebSocket client a slow reader: after each `burstBytes` received it stops reading its socket
 * for `pauseMs`, so the proxy has to hold the target back.
 */
export function readInBursts(ws: WebSocket, burstBytes: number, pauseMs: number): void {
  let sinceBurst = 0;
  ws.on('message', (data: Buffer) => {
    sinceBurst += data.length;
    if (sinceBurst < burstBytes || ws.isPaused) return;
    sinceBurst = 0;
    ws.pause();
    setTimeout(() => ws.resume(), pauseMs);
  });
}

/** A process's current and peak resident memory, in bytes, from /proc/PID/status. */
export function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!match) throw new Error(`no ${name} in /proc/${pid}/status`);
    return Number(match[1]) * 1024;
  };
  return { rss: field('VmRSS'), peak: field('VmHWM') };
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
