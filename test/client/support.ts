import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { type ClientListener, type ClientListenOptions, listenForClients } from '../../src/client/listen.js';
import { readAll, type TestServer } from '../helpers/targets.js';
import { waitUntil } from '../helpers/wait.js';

/** A listener of the library on 127.0.0.1, a free port, carrying connections to `url`. */
export function listenLocal(url: string, options: Omit<ClientListenOptions, 'listen'> = {}): Promise<ClientListener> {
  return listenForClients(url, { ...options, listen: { kind: 'tcp', host: '127.0.0.1', port: 0 } });
}

/** A local program's connection to the listener: half-open allowed, so the client's FIN shows on its own. */
export async function connectLocal(listener: ClientListener): Promise<net.Socket> {
  const socket = net.connect({ port: listener.port!, host: '127.0.0.1', allowHalfOpen: true });
  await once(socket, 'connect');
  return socket;
}

/**
 * Resolves when the client has closed or ended the local program's connection (FIN, reset or close), its
 * bytes read and dropped on the way.
 */
export function closedByClient(socket: net.Socket): Promise<void> {
  socket.on('error', () => undefined);
  socket.resume();
  return new Promise((resolve) => {
    socket.once('end', resolve);
    socket.once('close', resolve);
  });
}

/** Writes `data` in 64 KiB pieces, waiting for 'drain' when the socket says so (as a well-behaved program does). */
export async function writeAll(socket: net.Socket, data: Buffer, then: 'end' | 'keep' = 'keep'): Promise<void> {
  for (let offset = 0; offset < data.length; offset += 65536) {
    if (!socket.write(data.subarray(offset, offset + 65536))) await once(socket, 'drain');
  }
  if (then === 'end') socket.end();
}

/** Reads at least `length` bytes (the rest of the last chunk too; fewer if the socket ends first). */
export function readBytes(socket: net.Socket, length: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= length) finish();
    };
    const finish = (): void => {
      socket.removeListener('data', onData);
      socket.removeListener('end', finish);
      socket.removeListener('error', reject);
      resolve(Buffer.concat(chunks));
    };
    socket.on('data', onData);
    socket.once('end', finish);
    socket.once('error', reject);
  });
}

/**
 * A target that sends `outgoing` and reads what comes until it has `expect` bytes, then ends its side;
 * `received` resolves with what it read.
 */
export function exchangeWith(target: TestServer, outgoing: Buffer, expect: number): Promise<Buffer> {
  return target.nextConnection().then(async (socket) => {
    const [received] = await Promise.all([readBytes(socket, expect), writeAll(socket, outgoing)]);
    socket.end();
    return received;
  });
}

/**
 * Both ways at once: a new local connection to `listener` sends `upSize` random bytes while the target's
 * next connection sends `downSize` and then ends. Asserts that each side received the other's bytes
 * exactly (the local side all of them before the target's FIN), and resolves with the local connection,
 * its own side still open, and what was sent.
 */
export async function exchangeBothWays(
  listener: ClientListener,
  target: TestServer,
  upSize: number,
  downSize: number,
): Promise<{ app: net.Socket; up: Buffer; down: Buffer }> {
  const up = payload(upSize);
  const down = payload(downSize);
  const targetGot = exchangeWith(target, down, up.length);
  const app = await connectLocal(listener);
  const [appGot] = await Promise.all([readAll(app), writeAll(app, up)]);
  assert.ok(up.equals(await targetGot), 'the target received the local bytes exactly');
  assert.equal(appGot.length, down.length);
  assert.ok(appGot.equals(down), 'the local side received the target bytes exactly, before its FIN');
  return { app, up, down };
}

/**
 * Sends `data` over `socket` as {@link writeAll} does (64 KiB pieces, waiting for 'drain'; then ends it),
 * until the peer's side holds it back: it waits until the writer is blocked on 'drain' and has made no
 * progress for 100 ms, sampling `queued()` (a queue that should stay bounded) on the way. Fails naming
 * `what` if that does not come.
 * @returns how many bytes were written before the hold, the largest `queued()` seen, and the rest of the
 * writing (it resolves once every byte is written and the socket ended).
 */
export async function sendUntilHeldBack(
  what: string,
  socket: net.Socket,
  data: Buffer,
  queued: () => number,
): Promise<{ written: number; largest: number; sending: Promise<void> }> {
  let written = 0;
  let blocked = false;
  const sending = (async () => {
    for (let offset = 0; offset < data.length; offset += 65536) {
      written = offset;
      if (!socket.write(data.subarray(offset, offset + 65536))) {
        blocked = true;
        await once(socket, 'drain');
        blocked = false;
      }
    }
    socket.end();
  })();
  let largest = 0;
  let last = -1;
  await waitUntil(what, async () => {
    largest = Math.max(largest, queued());
    const stalled = blocked && written === last;
    last = written;
    await new Promise((resolve) => setTimeout(resolve, 100));
    return stalled;
  });
  return { written, largest, sending };
}

/** Random bytes of `size` (random, so that a lost, doubled or reordered piece cannot pass). */
export function payload(size: number): Buffer {
  return randomBytes(size);
}

export { readAll };
