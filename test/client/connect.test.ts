import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { WebSocketServer } from 'ws';
import { connectToWebSocket } from '../../src/client/connect.js';
import { UsageError } from '../../src/errors.js';
import { captureLog } from '../helpers/log-capture.js';
import { ProxyPool } from '../helpers/proxy.js';
import { startEchoServer, startServer, type TestServer, unusedPort } from '../helpers/targets.js';
import {
  closedByClient,
  connectLocal,
  exchangeBothWays,
  listenLocal,
  payload,
  readAll,
  readBytes,
  sendUntilHeldBack,
  writeAll,
} from './support.js';

const MiB = 1024 * 1024;
const pool = new ProxyPool();
let target: TestServer;
let echo: TestServer;
let proxyUrl: string;

before(async () => {
  target = await startServer();
  echo = await startEchoServer();
  proxyUrl = (await pool.start(['127.0.0.1:0', `127.0.0.1:${target.port}`])).url;
});
after(async () => {
  await pool.stopAll();
  await target.close();
  await echo.close();
});

/** The ends of the chain {@link overChain} makes. */
interface Chain {
  /** The local program's connection (half-open allowed). */
  appSocket: net.Socket;
  /** Its accepted end, carried by `session`. */
  accepted: net.Socket;
  /** connectToWebSocket's session over `accepted`, through a proxy of the pool. */
  session: ReturnType<typeof connectToWebSocket>;
  /** The target's end of the proxy's connection. */
  targetSide: net.Socket;
}

/**
 * Runs `use` over a chain of its own: a local program's connection whose accepted end connectToWebSocket
 * carries through a new proxy to a new target; the proxy and both servers are stopped after it.
 */
async function overChain(use: (chain: Chain) => Promise<void>): Promise<void> {
  const server = await startServer();
  const local = await startServer();
  const proxy = await pool.start(['127.0.0.1:0', `127.0.0.1:${server.port}`]);
  try {
    const appSocket = net.connect({ port: local.port, host: '127.0.0.1', allowHalfOpen: true });
    const accepted = await local.nextConnection();
    const session = connectToWebSocket(accepted, proxy.url);
    const targetSide = await server.nextConnection();
    await use({ appSocket, accepted, session, targetSide });
  } finally {
    await pool.stop(proxy);
    await server.close();
    await local.close();
  }
}

describe('through websockify-ts', { timeout: 60_000 }, () => {
  test('16 MiB each way at once arrive byte-exact; the target then ends, and the local side gets every byte, then FIN', async () => {
    const log = captureLog();
    const listener = await listenLocal(`${proxyUrl}/`, { logger: log.logger });
    try {
      const { app, up, down } = await exchangeBothWays(listener, target, 16 * MiB, 16 * MiB);
      app.end();
      const closed = await log.waitFor((e) => e.event === 'closed');
      assert.equal(closed.code, 1000);
      assert.equal(closed.bytesToServer, up.length);
      assert.equal(closed.bytesFromServer, down.length);
      assert.equal(
        log.events.find((e) => e.event === 'ws-close'),
        undefined,
        'an ordinary close logs no warning',
      );
    } finally {
      listener.destroy();
    }
  });

  test("the local side's FIN: everything it sent reaches the target, then the target's FIN", async () => {
    const listener = await listenLocal(proxyUrl);
    try {
      const data = payload(3 * MiB + 17);
      const conn = target.nextConnection();
      const app = await connectLocal(listener);
      const appEnd = readAll(app);
      await writeAll(app, data, 'end');
      const received = await readAll(await conn);
      assert.ok(received.equals(data));
      // The WebSocket closes after our close frame, and the local side is ended in turn.
      assert.equal((await appEnd).length, 0);
    } finally {
      listener.destroy();
    }
  });

  test('a local side that does not read: the WebSocket is paused, memory stays bounded, and every byte arrives later', async () => {
    const data = payload(48 * MiB);
    await overChain(async ({ appSocket, accepted, session, targetSide }) => {
      appSocket.pause();
      // The chain fills (kernel buffers, the proxy's mark, ours) and then stops taking bytes.
      const { written, largest, sending } = await sendUntilHeldBack(
        'the target to be held back',
        targetSide,
        data,
        () => accepted.writableLength,
      );
      assert.ok(written < data.length / 2, `the target could write ${written} bytes into a local side that does not read`);
      // One message over the local socket's own mark at most: the WebSocket is paused, not buffered.
      assert.ok(largest <= accepted.writableHighWaterMark + 256 * 1024, `${largest} bytes queued towards the local side`);
      appSocket.resume();
      const received = await readAll(appSocket);
      await sending;
      assert.ok(received.equals(data));
      assert.equal((await session.closed).code, 1000);
    });
  });

  test('a target that does not read: the local side is paused, and its bytes all arrive once the target reads', async () => {
    const data = payload(48 * MiB);
    await overChain(async ({ appSocket, session, targetSide }) => {
      targetSide.pause();
      const { written, largest, sending } = await sendUntilHeldBack(
        'the local program to be held back',
        appSocket,
        data,
        () => session.ws.bufferedAmount,
      );
      assert.ok(written < data.length / 2, `the local program could write ${written} bytes towards a target that does not read`);
      assert.ok(largest <= 2 * 256 * 1024, `${largest} bytes queued towards the server`);
      const received = readAll(targetSide);
      targetSide.resume();
      assert.ok((await received).equals(data));
      await sending;
      assert.equal((await session.closed).bytesToServer, data.length);
    });
  });

  test('a local connection reset while open: the server is told (close 1001), and the target gets its FIN', async () => {
    const log = captureLog();
    const listener = await listenLocal(proxyUrl, { logger: log.logger });
    try {
      const conn = target.nextConnection();
      const app = await connectLocal(listener);
      app.write('before the reset');
      const targetSide = await conn;
      assert.equal((await readBytes(targetSide, 16)).toString(), 'before the reset');
      const targetEnd = readAll(targetSide);
      app.resetAndDestroy();
      await targetEnd;
      const closed = await log.waitFor((e) => e.event === 'closed');
      assert.equal(closed.code, 1001);
    } finally {
      listener.destroy();
    }
  });

  test('--protocol base64: text frames of base64 both ways, byte-exact', async () => {
    const log = captureLog();
    const listener = await listenLocal(proxyUrl, { protocol: 'base64', logger: log.logger });
    try {
      await exchangeBothWays(listener, target, MiB + 3, MiB + 5);
      assert.equal((await log.waitFor((e) => e.event === 'ws-open')).protocol, 'base64');
    } finally {
      listener.destroy();
    }
  });

  test('a token in the URL reaches the target it names; an unknown token is refused, the local side closed and the status logged', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsfy-client-token-'));
    const file = path.join(dir, 'tokens');
    fs.writeFileSync(file, `vm1: 127.0.0.1:${echo.port}\n`);
    const proxy = await pool.start(['--token-plugin', 'TokenFile', '--token-source', file, '127.0.0.1:0']);
    const log = captureLog();
    const good = await listenLocal(`${proxy.url}/websockify?token=vm1`, { logger: log.logger });
    const bad = await listenLocal(`${proxy.url}/websockify?token=nope`, { logger: log.logger });
    try {
      const app = await connectLocal(good);
      app.write('through the token');
      assert.equal((await readBytes(app, 17)).toString(), 'through the token');
      app.destroy();

      const refused = await connectLocal(bad);
      await closedByClient(refused);
      const event = await log.waitFor((e) => e.event === 'ws-refused');
      assert.match(String(event.error), /Unexpected server response: 4\d\d/);
      // The token is not written to the log.
      assert.doesNotMatch(JSON.stringify(log.events), /nope/);
    } finally {
      good.destroy();
      bad.destroy();
      await pool.stop(proxy);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a close code other than 1000/1001 (the target is unreachable: 1011) is logged, and the local side is ended', async () => {
    const proxy = await pool.start(['127.0.0.1:0', `127.0.0.1:${await unusedPort()}`]);
    const log = captureLog();
    const listener = await listenLocal(proxy.url, { logger: log.logger });
    try {
      const app = await connectLocal(listener);
      assert.equal((await readAll(app)).length, 0, 'the local side gets a FIN');
      const event = await log.waitFor((e) => e.event === 'ws-close');
      assert.equal(event.code, 1011);
      assert.match(String(event.reason), /ECONNREFUSED/);
      assert.equal(event.level, 40);
    } finally {
      listener.destroy();
      await pool.stop(proxy);
    }
  });
});

describe('when the WebSocket cannot be opened', { timeout: 30_000 }, () => {
  test('nothing listens: the local side is closed and ECONNREFUSED logged', async () => {
    const log = captureLog();
    const listener = await listenLocal(`ws://127.0.0.1:${await unusedPort()}/`, { logger: log.logger });
    try {
      const app = await connectLocal(listener);
      await closedByClient(app);
      const event = await log.waitFor((e) => e.event === 'ws-refused');
      assert.match(String(event.error), /ECONNREFUSED/);
      assert.equal(event.level, 50);
    } finally {
      listener.destroy();
    }
  });

  test('an HTTP error status instead of 101: the local side is closed and the status logged', async () => {
    const http = await startServer((socket) => {
      socket.once('data', () => socket.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'));
    });
    const log = captureLog();
    const listener = await listenLocal(`ws://127.0.0.1:${http.port}/x`, { logger: log.logger });
    try {
      const app = await connectLocal(listener);
      await closedByClient(app);
      assert.match(String((await log.waitFor((e) => e.event === 'ws-refused')).error), /Unexpected server response: 503/);
    } finally {
      listener.destroy();
      await http.close();
    }
  });

  test('a server that never answers the upgrade: given up after --connect-timeout', async () => {
    const silent = await startServer();
    const log = captureLog();
    const listener = await listenLocal(`ws://127.0.0.1:${silent.port}/`, { logger: log.logger, connectTimeout: 0.3 });
    try {
      const app = await connectLocal(listener);
      await closedByClient(app);
      assert.match(String((await log.waitFor((e) => e.event === 'ws-refused')).error), /timed out/);
    } finally {
      listener.destroy();
      await silent.close();
    }
  });
});

describe('servers other than websockify', { timeout: 30_000 }, () => {
  test('a server that picks base64 from the default offer gets base64 text frames', async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', handleProtocols: () => 'base64' });
    await once(wss, 'listening');
    const frames: Array<{ text: string; isBinary: boolean }> = [];
    wss.on('connection', (ws) => {
      ws.on('message', (data: Buffer, isBinary) => {
        frames.push({ text: data.toString(), isBinary });
        ws.send(Buffer.from('pong bytes').toString('base64'));
      });
    });
    const listener = await listenLocal(`ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}/`);
    try {
      const app = await connectLocal(listener);
      app.write('ping bytes');
      assert.equal((await readBytes(app, 10)).toString(), 'pong bytes');
      assert.deepEqual(frames, [{ text: Buffer.from('ping bytes').toString('base64'), isBinary: false }]);
      app.destroy();
    } finally {
      listener.destroy();
      wss.close();
    }
  });

  test('--heartbeat: a server that answers pings keeps the session; one that never does is dropped', async () => {
    const mute = new WebSocketServer({ port: 0, host: '127.0.0.1', autoPong: false });
    await once(mute, 'listening');
    const log = captureLog();
    const listening = await listenLocal(`${proxyUrl}/`, { heartbeat: 0.1, logger: log.logger });
    const dropping = await listenLocal(`ws://127.0.0.1:${(mute.address() as net.AddressInfo).port}/`, {
      heartbeat: 0.1,
      logger: log.logger,
    });
    try {
      const dropped = await connectLocal(dropping);
      await closedByClient(dropped);
      await log.waitFor((e) => e.event === 'heartbeat-timeout');

      const conn = target.nextConnection();
      const kept = await connectLocal(listening);
      const targetSide = await conn;
      // Several intervals go by with pongs coming back: the session is still there to carry bytes.
      await new Promise((resolve) => setTimeout(resolve, 500));
      kept.write('still here');
      assert.equal((await readBytes(targetSide, 10)).toString(), 'still here');
      assert.equal(log.events.filter((e) => e.event === 'heartbeat-timeout').length, 1);
      kept.destroy();
    } finally {
      listening.destroy();
      dropping.destroy();
      mute.close();
    }
  });
});

describe('options', { timeout: 30_000 }, () => {
  test('bad URLs and options are usage errors', () => {
    const local = new net.Socket();
    for (const [url, options, problem] of [
      ['http://example.com/', {}, /unsupported URL scheme 'http:'/],
      ['not a url', {}, /invalid URL/],
      ['ws://example.com/', { insecure: true }, /--insecure need a wss:\/\/ URL/],
      ['wss://example.com/', { key: 'k' }, /--key needs --cert/],
      ['ws://example.com/', { headers: ['NoColon'] }, /expected 'Name: value'/],
      ['ws://example.com/', { headers: { 'X-A': 'a\r\nX-B: b' } }, /line breaks/],
      ['ws://example.com/', { connectTimeout: -1 }, /--connect-timeout/],
    ] as const) {
      assert.throws(
        () => connectToWebSocket(local, url, options),
        (err: Error) => err instanceof UsageError && problem.test(err.message),
      );
    }
  });

  test('--header and --origin are sent with the upgrade request; repeated Cookie headers are joined', async () => {
    const http = await startServer();
    const listener = await listenLocal(`ws://127.0.0.1:${http.port}/path?q=1`, {
      headers: ['Cookie: a=1', 'Authorization: Bearer xyz', 'cookie: b=2'],
      origin: 'https://desk.example',
    });
    try {
      const app = await connectLocal(listener);
      app.on('error', () => undefined);
      // The request head comes in one write; the server never answers it.
      const request = (await readBytes(await http.nextConnection(), 1)).toString();
      assert.match(request, /^GET \/path\?q=1 HTTP\/1\.1\r\n/);
      assert.match(request, /\r\nCookie: a=1; b=2\r\n/i);
      assert.match(request, /\r\nAuthorization: Bearer xyz\r\n/i);
      assert.match(request, /\r\nOrigin: https:\/\/desk\.example\r\n/i);
      assert.match(request, /\r\nSec-WebSocket-Protocol: binary, ?base64\r\n/i);
    } finally {
      listener.destroy();
      await http.close();
    }
  });
});
