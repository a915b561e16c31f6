// Subprotocol negotiation as the client sees it on the wire, and frames the negotiated protocol does not
// carry: the proxy refuses them with the right close code and none of their bytes reach the target.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { type RunningProxy, startProxy } from '../helpers/proxy.js';
import { startEchoServer, type TestServer } from '../helpers/targets.js';
import { collect, openClient } from '../helpers/ws-client.js';
import { type Sink, startSink } from './support.js';

// Handshakes go to a proxy in front of an echo server; violations to one in front of a sink, which
// reports what each session delivered.
let echo: TestServer;
let sink: Sink;
let echoProxy: RunningProxy;
let sinkProxy: RunningProxy;
before(async () => {
  [echo, sink] = await Promise.all([startEchoServer(), startSink()]);
  [echoProxy, sinkProxy] = await Promise.all([
    startProxy(['127.0.0.1:0', `127.0.0.1:${echo.port}`]),
    startProxy(['127.0.0.1:0', `127.0.0.1:${sink.port}`]),
  ]);
});
after(async () => {
  await Promise.all([echoProxy?.stop(), sinkProxy?.stop()]);
  await Promise.all([echo?.close(), sink?.close()]);
});

/** What a raw handshake got: the status, the chosen protocol header, and the body of a refusal. */
interface Answer {
  status: number;
  protocol: string | undefined;
  body: string;
}

/**
 * Sends a WebSocket handshake with `Sec-WebSocket-Protocol` exactly as given (ws's client would refuse
 * to send spaces or unknown names), and reads the answer; an accepted connection is dropped at once.
 */
async function handshake(protocolHeader: string): Promise<Answer> {
  const req = http.request({
    host: '127.0.0.1',
    port: echoProxy.port,
    path: '/',
    headers: {
      Connection: 'Upgrade',
      Upgrade: 'websocket',
      'Sec-WebSocket-Version': '13',
      'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
      'Sec-WebSocket-Protocol': protocolHeader,
    },
  });
  req.end();
  return new Promise((resolve, reject) => {
    req.once('error', reject);
    req.once('upgrade', (res: http.IncomingMessage, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode!, protocol: res.headers['sec-websocket-protocol'], body: '' });
    });
    req.once('response', (res: http.IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (text: string) => (body += text));
      res.once('end', () => resolve({ status: res.statusCode!, protocol: res.headers['sec-websocket-protocol'], body }));
    });
  });
}

describe('negotiation on the wire', () => {
  test('only unknown protocols offered: HTTP 400 whose body names the problem', async () => {
    const answer = await handshake('foo, bar');
    assert.equal(answer.status, 400);
    assert.match(answer.body, /subprotocol/i);
    assert.match(answer.body, /foo, bar/);
    assert.equal(answer.protocol, undefined);
  });

  test('entries are trimmed: " binary , foo" chooses binary', async () => {
    const answer = await handshake(' binary , foo');
    assert.equal(answer.status, 101);
    assert.equal(answer.protocol, 'binary');
  });

  test('entries are trimmed: " base64 , foo" chooses base64', async () => {
    const answer = await handshake(' base64 , foo');
    assert.equal(answer.status, 101);
    assert.equal(answer.protocol, 'base64');
  });

  test("'binary' wins over 'base64' whatever the order", async () => {
    assert.equal((await handshake('base64, binary')).protocol, 'binary');
    const ws = await openClient(echoProxy.url, ['base64', 'binary']);
    assert.equal(ws.protocol, 'binary');
    ws.terminate();
  });
});

describe('frames the protocol does not carry', () => {
  /**
   * Opens a session offering `offered`, sends `good` (accepted) then `bad` (a frame that must be refused),
   * and returns the client's close and what the target received.
   */
  async function violate(
    offered: string[] | undefined,
    good: string | Buffer,
    bad: string | Buffer,
  ): Promise<{ code: number; reason: string; target: number }> {
    const ws = await openClient(sinkProxy.url, offered);
    try {
      const closed = collect(ws);
      ws.send(good, { binary: typeof good !== 'string' });
      ws.send(bad, { binary: typeof bad !== 'string' });
      // The proxy must close; the client does not.
      const result = await closed;
      const target = await sink.nextResult();
      return { code: result.code, reason: result.reason, target: target.bytes };
    } finally {
      ws.terminate();
    }
  }

  test("a text frame with 'binary' negotiated: close 1003, the frame does not reach the target", async () => {
    const result = await violate(['binary'], Buffer.from('12345'), 'text');
    assert.equal(result.code, 1003);
    assert.match(result.reason, /text frame/i);
    assert.equal(result.target, 5);
  });

  test('a text frame with no protocol negotiated: close 1003', async () => {
    const result = await violate(undefined, Buffer.from('12345'), 'text');
    assert.equal(result.code, 1003);
    assert.equal(result.target, 5);
  });

  test("a binary frame with 'base64' negotiated: close 1003", async () => {
    const result = await violate(['base64'], Buffer.from('12345').toString('base64'), Buffer.from('binary'));
    assert.equal(result.code, 1003);
    assert.match(result.reason, /binary frame/i);
    assert.equal(result.target, 5);
  });

  test("invalid base64 with 'base64' negotiated: close 1007, nothing of it reaches the target", async () => {
    for (const bad of ['QUJD!', 'QUJD==', 'Q', 'QU JD']) {
      const result = await violate(['base64'], Buffer.from('12345').toString('base64'), bad);
      assert.equal(result.code, 1007, bad);
      assert.match(result.reason, /base64/i);
      assert.equal(result.target, 5, bad);
    }
  });
});
