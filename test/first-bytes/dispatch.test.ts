import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { after, test } from 'node:test';
import { createDispatcher, type DispatchOptions, type FirstBytesRoute } from '../../src/first-bytes/dispatch.js';
import { waitUntil } from '../helpers/wait.js';

/*
 * The first-bytes dispatcher on real loopback sockets: the client writes, the server side of the
 * connection goes through the dispatcher, and the test reads what the chosen handler sees.
 */

const servers: net.Server[] = [];
const sockets: net.Socket[] = [];

after(async () => {
  for (const socket of sockets) socket.destroy();
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
});

/** Reads a stream until it ends (the client's FIN). */
function readToEnd(stream: Duplex): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}

/** A loopback server whose connections go through a dispatcher built from `options`; returns a connected client. */
async function dispatchedConnection(options: DispatchOptions): Promise<net.Socket> {
  const dispatch = createDispatcher(options);
  const server = net.createServer((socket) => {
    sockets.push(socket);
    dispatch(socket);
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = net.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port, noDelay: true });
  sockets.push(client);
  await new Promise((resolve) => client.once('connect', resolve));
  return client;
}

/** A route that records what it was shown and claims connections starting with `prefix`. */
function prefixRoute(name: string, prefix: string, handle: (socket: Duplex) => void) {
  const seen: Buffer[] = [];
  const wanted = Buffer.from(prefix);
  const route: FirstBytesRoute = {
    name,
    match(head) {
      seen.push(Buffer.from(head));
      const n = Math.min(head.length, wanted.length);
      if (!head.subarray(0, n).equals(wanted.subarray(0, n))) return false;
      return head.length >= wanted.length ? true : undefined;
    },
    handle,
  };
  return { route, seen };
}

/** A promise and its resolver. */
function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Writes `chunk` and waits until the route has looked at one more head than before. */
async function writeAndWaitForMatch(client: net.Socket, chunk: string, seen: Buffer[]): Promise<void> {
  const before = seen.length;
  client.write(chunk);
  await waitUntil(`the route to be asked again after writing ${JSON.stringify(chunk)}`, () => seen.length > before);
}

test('a route that needs more bytes gets them across several writes, then the whole stream', { timeout: 60_000 }, async () => {
  const handled = deferred<Buffer>();
  const fallback = deferred<Buffer>();
  const { route, seen } = prefixRoute('magic', 'MAGIC', (socket) => void readToEnd(socket).then(handled.resolve));
  const client = await dispatchedConnection({ routes: [route], fallback: (socket) => void readToEnd(socket).then(fallback.resolve) });
  await writeAndWaitForMatch(client, 'MA', seen);
  await writeAndWaitForMatch(client, 'G', seen);
  await writeAndWaitForMatch(client, 'IC and the rest', seen);
  client.end(' of it');
  assert.deepEqual(
    seen.map((head) => head.toString()),
    ['MA', 'MAG', 'MAGIC and the rest'],
    'the route saw the head grow with each write',
  );
  assert.equal((await handled.promise).toString(), 'MAGIC and the rest of it');
});

test('the fallback gets a connection that no route claims, bytes intact', { timeout: 60_000 }, async () => {
  const handledBy: string[] = [];
  const received = deferred<Buffer>();
  const first = prefixRoute('tls', '\x16\x03', () => handledBy.push('tls'));
  const second = prefixRoute('policy', '<policy-file-request/>', () => handledBy.push('policy'));
  const client = await dispatchedConnection({
    routes: [first.route, second.route],
    fallback: (socket) => {
      handledBy.push('fallback');
      void readToEnd(socket).then(received.resolve);
    },
  });
  client.end('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal((await received.promise).toString(), 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.deepEqual(handledBy, ['fallback']);
});

test('routes are tried in order and the first that claims the bytes gets them', { timeout: 60_000 }, async () => {
  const handledBy: string[] = [];
  const received = deferred<Buffer>();
  const never = prefixRoute('never', 'XYZ', () => handledBy.push('never'));
  const wanted = prefixRoute('wanted', 'AB', (socket) => {
    handledBy.push('wanted');
    void readToEnd(socket).then(received.resolve);
  });
  const shadowed = prefixRoute('shadowed', 'A', () => handledBy.push('shadowed'));
  const client = await dispatchedConnection({
    routes: [never.route, wanted.route, shadowed.route],
    fallback: () => handledBy.push('fallback'),
  });
  client.end('ABCD');
  assert.equal((await received.promise).toString(), 'ABCD');
  assert.deepEqual(handledBy, ['wanted']);
});

test('an undecided route gives up after maxSniffBytes and the fallback reads everything', { timeout: 60_000 }, async () => {
  const received = deferred<Buffer>();
  const seen: Buffer[] = [];
  const undecided: FirstBytesRoute = {
    name: 'undecided',
    match: (head) => {
      seen.push(Buffer.from(head));
      return undefined;
    },
    handle: () => assert.fail('the undecided route took the socket'),
  };
  const client = await dispatchedConnection({
    routes: [undecided],
    fallback: (socket) => void readToEnd(socket).then(received.resolve),
    maxSniffBytes: 8,
  });
  await writeAndWaitForMatch(client, '1234', seen);
  await writeAndWaitForMatch(client, '5678', seen);
  client.end('9');
  assert.equal((await received.promise).toString(), '123456789');
});

test('a large first write is handed on whole and in order', { timeout: 60_000 }, async () => {
  const payload = randomBytes(4 * 1024 * 1024);
  payload.write('MAGIC', 0);
  const received = deferred<Buffer>();
  const { route } = prefixRoute('magic', 'MAGIC', (socket) => void readToEnd(socket).then(received.resolve));
  const client = await dispatchedConnection({ routes: [route], fallback: () => assert.fail('the fallback took the socket') });
  client.end(payload);
  const got = await received.promise;
  assert.equal(got.length, payload.length);
  assert.ok(got.equals(payload), 'the bytes differ from those sent');
});

test('a handler that pauses the socket and reads later still gets the sniffed bytes', { timeout: 60_000 }, async () => {
  const received = deferred<Buffer>();
  const { route } = prefixRoute('late', 'LATE', (socket) => {
    // A handler with work to do first (a lookup, a TLS set-up) pauses, then reads.
    socket.pause();
    setTimeout(() => {
      void readToEnd(socket).then(received.resolve);
      socket.resume();
    }, 50);
  });
  const client = await dispatchedConnection({ routes: [route], fallback: () => assert.fail('the fallback took the socket') });
  client.write('LATE but whole');
  await new Promise((resolve) => setTimeout(resolve, 20));
  client.end('!');
  assert.equal((await received.promise).toString(), 'LATE but whole!');
});
