import assert from 'node:assert/strict';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { after, before, test } from 'node:test';
import { armDeadline, disarmDeadline } from '../../src/handshake/deadline.js';

/* The handshake deadline on real loopback sockets. */

let server: net.Server;
const sockets: net.Socket[] = [];

before(async () => {
  server = net.createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
});

after(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => server.close(resolve));
});

/** A connected client socket (its server side is kept open until the end). */
async function socketPair(): Promise<net.Socket> {
  const client = net.connect({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port });
  sockets.push(client);
  await new Promise((resolve) => client.once('connect', resolve));
  return client;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

test('an armed deadline expires once, with the socket', async () => {
  const socket = await socketPair();
  const expired: Duplex[] = [];
  armDeadline(socket, 20, (late) => expired.push(late));
  await sleep(100);
  assert.deepEqual(expired, [socket]);
});

test('a disarmed deadline never expires', async () => {
  const socket = await socketPair();
  let expired = 0;
  armDeadline(socket, 20, () => expired++);
  disarmDeadline(socket);
  await sleep(100);
  assert.equal(expired, 0);
});

test('arming again replaces the earlier deadline', async () => {
  const socket = await socketPair();
  const calls: string[] = [];
  armDeadline(socket, 20, () => calls.push('first'));
  armDeadline(socket, 60, () => calls.push('second'));
  await sleep(150);
  assert.deepEqual(calls, ['second']);
});

test('a socket that closes first cancels its deadline', async () => {
  const socket = await socketPair();
  let expired = 0;
  armDeadline(socket, 50, () => expired++);
  socket.destroy();
  await sleep(120);
  assert.equal(expired, 0);
});
