import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { WebSocket } from 'ws';
import { handshakeRequest, maskedFrame } from '../../bench/wire.js';
import { type RunningProxy, startProxy } from '../helpers/proxy.js';
import { type HttpHead, RawConnection } from '../helpers/raw-connection.js';
import { startEchoServer, type TestServer } from '../helpers/targets.js';
import { openClient } from '../helpers/ws-client.js';

/*
 * Bad input at the HTTP stage: each case gets its answer, and neither the server nor a WebSocket
 * session opened before the first case (and checked after the last) notices.
 */

let echo: TestServer;
let proxy: RunningProxy;
let bystander: WebSocket;
const opened: RawConnection[] = [];

before(async () => {
  echo = await startEchoServer();
  proxy = await startProxy(['--handshake-timeout', '1', '127.0.0.1:0', `127.0.0.1:${echo.port}`]);
  bystander = await openClient(proxy.url, ['binary']);
});

after(async () => {
  for (const conn of opened) conn.destroy();
  bystander?.terminate();
  await proxy?.stop();
  await echo?.close();
});

/** Opens a raw connection to the proxy, destroyed after the tests whatever happens. */
async function connect(): Promise<RawConnection> {
  const conn = await RawConnection.open(proxy.port!);
  opened.push(conn);
  return conn;
}

/** Sends `request` in one write and returns the answer's head; the proxy must close the connection after it. */
async function exchange(request: string | Buffer): Promise<HttpHead> {
  const conn = await connect();
  conn.write(request);
  const head = await conn.head();
  assert.ok(head, `no HTTP answer; received: ${JSON.stringify(conn.received.toString('latin1'))}`);
  assert.ok(await conn.waitClosed(), `the connection stays open after ${head.statusLine}`);
  return head;
}

/** Sends one binary message through the bystander session and waits for its echo. */
async function bystanderEchoes(payload: Buffer): Promise<Buffer> {
  const reply = new Promise<Buffer>((resolve, reject) => {
    bystander.once('message', (data: Buffer) => resolve(data));
    bystander.once('close', () => reject(new Error('the bystander session closed')));
  });
  bystander.send(payload);
  return reply;
}

test('the bystander session echoes before the bad input starts', async () => {
  assert.deepEqual(await bystanderEchoes(Buffer.from('before')), Buffer.from('before'));
});

test('garbage bytes get 400', async () => {
  const head = await exchange(Buffer.from('\x16\x03\x01 this is \x00 not HTTP\r\n\r\n', 'latin1'));
  assert.equal(head.status, 400);
  await proxy.waitForEvent((e) => e.event === 'refused' && e.status === 400 && String(e.reason).startsWith('malformed HTTP request'));
});

test('an HTTP/1.1 request without Host gets 400 with a reason, logged as a refusal', async () => {
  const conn = await connect();
  conn.write('GET /no-host HTTP/1.1\r\n\r\n');
  assert.equal((await conn.head())?.status, 400);
  assert.ok(await conn.waitClosed());
  assert.match(conn.received.toString(), /\r\n\r\n[\s\S]*without Host/);
  await proxy.waitForEvent((e) => e.event === 'refused' && e.status === 400 && String(e.reason).includes('without Host'));
});

test('a request head beyond --max-header-size (16 KiB) gets 431', async () => {
  const head = await exchange(handshakeRequest({ protocol: 'binary', extra: [`X-Filler: ${'x'.repeat(17 * 1024)}`] }));
  assert.equal(head.status, 431);
});

test('a request head just under --max-header-size is accepted', async () => {
  const conn = await connect();
  conn.write(handshakeRequest({ protocol: 'binary', extra: [`X-Filler: ${'x'.repeat(15 * 1024)}`] }));
  assert.equal((await conn.head())?.status, 101);
});

test('half a request and then silence gets 408 after --handshake-timeout', async () => {
  const conn = await connect();
  const started = Date.now();
  conn.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n');
  const head = await conn.head(5000);
  const elapsed = Date.now() - started;
  assert.equal(head?.status, 408);
  // Not at once, and not long after the 1 s deadline (a wide bound: this guards against a hang, not speed).
  assert.ok(elapsed >= 900, `408 after ${elapsed} ms, before the deadline`);
  assert.ok(elapsed < 4000, `408 after ${elapsed} ms`);
  assert.ok(await conn.waitClosed());
});

test('a client that sends nothing is disconnected after --handshake-timeout', async () => {
  const conn = await connect();
  const started = Date.now();
  assert.ok(await conn.waitClosed(5000), 'the silent connection is still open');
  assert.ok(Date.now() - started >= 900, 'closed before the deadline');
});

test('an unsupported Sec-WebSocket-Version gets 426 naming version 13', async () => {
  const head = await exchange(handshakeRequest({ protocol: 'binary', version: '12' }));
  assert.equal(head.status, 426);
  assert.equal(head.headers['sec-websocket-version'], '13');
});

test('a handshake without Sec-WebSocket-Key gets 400', async () => {
  const head = await exchange(handshakeRequest({ protocol: 'binary', key: null }));
  assert.equal(head.status, 400);
});

test('a protocol list naming binary twice gets 400, logged as a refusal', async () => {
  const head = await exchange(handshakeRequest({ protocol: 'binary, binary' }));
  assert.equal(head.status, 400);
  await proxy.waitForEvent((e) => e.event === 'refused' && e.status === 400 && String(e.reason).includes('Sec-WebSocket-Protocol'));
});

test('an upgrade to h2c gets 400', async () => {
  const head = await exchange(
    handshakeRequest({
      upgrade: 'h2c',
      connection: 'Upgrade, HTTP2-Settings',
      key: null,
      version: null,
      extra: ['HTTP2-Settings: AAMAAABkAAQAAP__'],
    }),
  );
  assert.equal(head.status, 400);
});

test('a plain GET gets 405 with Allow: GET', async () => {
  const head = await exchange('GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  assert.equal(head.status, 405);
  assert.equal(head.headers.allow, 'GET');
});

test('a POST carrying the upgrade headers gets 405 with Allow: GET', async () => {
  const head = await exchange(handshakeRequest({ method: 'POST', protocol: 'binary' }));
  assert.equal(head.status, 405);
  assert.equal(head.headers.allow, 'GET');
});

test('CONNECT gets 405 with Allow: GET, as any plain request, and a refusal line', async () => {
  const head = await exchange('CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n');
  assert.equal(head.status, 405);
  assert.equal(head.headers.allow, 'GET');
  await proxy.waitForEvent((e) => e.event === 'refused' && e.status === 405 && e.path === '127.0.0.1:22', 5000);
});

test('Upgrade: websocket without Connection: Upgrade gets 400', async () => {
  const head = await exchange(handshakeRequest({ protocol: 'binary', connection: null }));
  assert.equal(head.status, 400);
});

test("Firefox's Connection: keep-alive, Upgrade and a mixed-case Upgrade: WebSocket are accepted", async () => {
  const conn = await connect();
  conn.write(handshakeRequest({ protocol: 'binary', connection: 'keep-alive, Upgrade', upgrade: 'WebSocket' }));
  const head = await conn.head();
  assert.equal(head?.status, 101);
  assert.equal(head?.headers['sec-websocket-protocol'], 'binary');
});

test('a request and the first frames in one write: the frames reach the target in order', async () => {
  const conn = await connect();
  const payloads = [Buffer.from('first frame, sent with the request'), Buffer.from(' and a second one')];
  const frames = payloads.map((payload) => maskedFrame(payload));
  conn.write(Buffer.concat([Buffer.from(handshakeRequest({ protocol: 'binary' })), ...frames]));
  const head = await conn.head();
  assert.equal(head?.status, 101);
  assert.equal(head?.headers['sec-websocket-protocol'], 'binary');
  const expected = Buffer.concat(payloads);
  assert.deepEqual(await conn.data(expected.length), expected);
});

test('a request split into 1-byte writes still completes the handshake', async () => {
  const conn = await connect();
  const request = Buffer.from(handshakeRequest({ protocol: 'binary' }));
  await conn.writeSlowly(Array.from(request, (byte) => Buffer.from([byte])));
  const head = await conn.head();
  assert.equal(head?.status, 101);
  const payload = Buffer.from('after a byte-by-byte handshake');
  conn.write(maskedFrame(payload));
  assert.deepEqual(await conn.data(payload.length), payload);
});

test('after all of that the bystander session still echoes, and new sessions open', async () => {
  assert.deepEqual(await bystanderEchoes(Buffer.from('after')), Buffer.from('after'));
  const fresh = await openClient(proxy.url, ['binary']);
  try {
    const reply = new Promise<Buffer>((resolve) => fresh.once('message', (data: Buffer) => resolve(data)));
    fresh.send(Buffer.from('fresh'));
    assert.deepEqual(await reply, Buffer.from('fresh'));
  } finally {
    fresh.terminate();
  }
  assert.equal(proxy.proc.exitCode, null, 'the proxy exited');
});
