import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { createDispatcher } from '../../src/first-bytes/dispatch.js';
import { createFlashPolicyRoute } from '../../src/first-bytes/flash-policy.js';
import { type CapturedLog, captureLog } from '../helpers/log-capture.js';
import { readAll } from '../helpers/targets.js';

const EXPECTED = Buffer.from('<cross-domain-policy><allow-access-from domain="*" to-ports="*" /></cross-domain-policy>\0', 'latin1');

let server: net.Server;
let port: number;
let log: CapturedLog;
const sockets = new Set<net.Socket>();
before(async () => {
  log = captureLog();
  // The fallback stands in for the HTTP stage: it answers with exactly the bytes it was given.
  const fallback = (socket: import('node:stream').Duplex): void => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (Buffer.concat(chunks).includes('\n')) socket.end(Buffer.concat([Buffer.from('fallback:'), ...chunks]));
    });
  };
  const dispatch = createDispatcher({ routes: [createFlashPolicyRoute(log.logger)], fallback });
  server = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    dispatch(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as net.AddressInfo).port;
});
after(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => server.close(resolve));
});

/** Sends `parts` with a pause between them (so each is its own segment) and reads to the server's close. */
async function exchange(parts: Array<string | Buffer>): Promise<Buffer> {
  const socket = net.connect({ port, host: '127.0.0.1', noDelay: true });
  socket.on('error', () => undefined);
  const received = readAll(socket);
  for (const part of parts) {
    socket.write(part);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const data = await received;
  socket.destroy();
  return data;
}

test('match: undecided on a prefix of the request, true on the request, false once the bytes diverge', () => {
  const isFlashPolicyRequest = createFlashPolicyRoute(log.logger).match;
  const request = '<policy-file-request/>';
  for (let n = 1; n < request.length; n++)
    assert.equal(isFlashPolicyRequest(Buffer.from(request.slice(0, n))), undefined, request.slice(0, n));
  assert.equal(isFlashPolicyRequest(Buffer.from(request)), true);
  assert.equal(isFlashPolicyRequest(Buffer.from(`${request}\0`)), true);
  assert.equal(isFlashPolicyRequest(Buffer.from('<policy-file-requesX')), false);
  assert.equal(isFlashPolicyRequest(Buffer.from('GET / HTTP/1.1')), false);
  assert.equal(isFlashPolicyRequest(Buffer.from([0x16, 0x03, 0x01])), false);
});

test('a policy request with its NUL gets the policy, byte for byte, and the connection is closed', async () => {
  assert.deepEqual(await exchange(['<policy-file-request/>\0']), EXPECTED);
  assert.ok(log.events.some((e) => e.event === 'flash-policy' && e.level === 30));
});

test('the request without a NUL is answered too', async () => {
  assert.deepEqual(await exchange(['<policy-file-request/>']), EXPECTED);
});

test('the request sent one byte at a time is answered', async () => {
  const bytes = [...Buffer.from('<policy-file-request/>\0')].map((byte) => Buffer.from([byte]));
  assert.deepEqual(await exchange(bytes), EXPECTED);
});

test('other first bytes, even a near miss sent in pieces, reach the fallback intact', async () => {
  assert.equal((await exchange(['<policy-', 'file-requesX/>\n'])).toString(), 'fallback:<policy-file-requesX/>\n');
  assert.equal((await exchange(['GET / HTTP/1.1\r\n'])).toString(), 'fallback:GET / HTTP/1.1\r\n');
});
