import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { type ClientOptions, WebSocket } from 'ws';

/**
 * Opens a WebSocket client (compression off, as the proxy) and waits until it is open. Messages that
 * came in the same read as the 101 are held until the caller's code after the `await` has run (it
 * attaches its listeners there): ws would emit them from a process.nextTick, before that code, and
 * they would be lost.
 */
export async function openClient(url: string, protocols?: string | string[], options: ClientOptions = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, protocols, { perMessageDeflate: false, ...options });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => {
      // The socket, not the WebSocket: a caller that pauses the WebSocket itself keeps it paused.
      const socket = (ws as unknown as { _socket: Duplex })._socket;
      socket.pause();
      setImmediate(() => {
        if (!ws.isPaused) socket.resume();
      });
      resolve();
    });
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
  return ws;
}

/** What a client received over a whole session. */
export interface Received {
  /** Every payload byte, base64 text frames decoded. */
  data: Buffer;
  textFrames: number;
  binaryFrames: number;
  code: number;
  reason: string;
}

/** Collects everything a client receives until the connection closes. */
export function collect(ws: WebSocket, decodeBase64 = false): Promise<Received> {
  const chunks: Buffer[] = [];
  let textFrames = 0;
  let binaryFrames = 0;
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (isBinary) binaryFrames++;
    else textFrames++;
    chunks.push(!isBinary && decodeBase64 ? Buffer.from(data.toString(), 'base64') : data);
  });
  return once(ws, 'close').then(([code, reason]) => ({
    data: Buffer.concat(chunks),
    textFrames,
    binaryFrames,
    code: code as number,
    reason: String(reason),
  }));
}

/** Sends `text` as one binary message and resolves with the next message received (the echo), as text. */
export async function echoed(ws: WebSocket, text: string): Promise<string> {
  const reply = once(ws, 'message');
  ws.send(Buffer.from(text));
  const [data] = (await reply) as [Buffer];
  return data.toString();
}
