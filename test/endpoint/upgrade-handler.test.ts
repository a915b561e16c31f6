import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type net from 'node:net';
import { after, describe, test } from 'node:test';
import Fastify from 'fastify';
import { pino } from 'pino';
import { createUpgradeHandler, type SessionEndInfo, type TokenPlugin, UsageError } from '../../src/index.js';
import { startEchoServer } from '../helpers/targets.js';
import { waitUntil } from '../helpers/wait.js';
import { collect, openClient } from '../helpers/ws-client.js';

const quiet = pino({ level: 'silent' });

/** A plain node:http server of the test's own on a loopback port, answering 'app' to plain requests. */
async function appServer(): Promise<{ server: http.Server; base: string }> {
  const server = http.createServer((_req, res) => res.end('app'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return { server, base: `127.0.0.1:${(server.address() as net.AddressInfo).port}` };
}

describe('createUpgradeHandler', () => {
  test('bridges upgrade requests for its path on the caller’s server, which keeps serving its own requests', async () => {
    const echo = await startEchoServer();
    after(() => echo.close());
    const { server, base } = await appServer();
    const bridge = await createUpgradeHandler({ path: '/websockify', target: `127.0.0.1:${echo.port}`, logger: quiet });
    after(() => bridge.close());
    server.on('upgrade', bridge.handleUpgrade);
    const ended = once(bridge, 'session-close') as Promise<[SessionEndInfo]>;
    const ws = await openClient(`ws://${base}/websockify?x=1`, 'binary');
    const received = collect(ws);
    ws.send(Buffer.alloc(100_000, 7));
    let got = 0;
    ws.on('message', (data: Buffer) => {
      got += data.length;
      if (got === 100_000) ws.close();
    });
    assert.equal((await received).data.length, 100_000);
    const [info] = await ended;
    assert.equal(info.bytesFromClient, 100_000);
    assert.equal(info.path, '/websockify?x=1');
    assert.equal(await (await fetch(`http://${base}/`)).text(), 'app');
  });

  test('handleUpgrade leaves other paths to other listeners and says so', async () => {
    const { server, base } = await appServer();
    const bridge = await createUpgradeHandler({ path: '/websockify', target: '127.0.0.1:9', logger: quiet });
    after(() => bridge.close());
    const others: string[] = [];
    server.on('upgrade', (req, socket, head) => {
      if (bridge.handleUpgrade(req, socket, head)) return;
      others.push(req.url ?? '');
      socket.end('HTTP/1.1 418 I am a teapot\r\nConnection: close\r\n\r\n');
    });
    await assert.rejects(openClient(`ws://${base}/elsewhere`, 'binary'), /HTTP 418/);
    assert.deepEqual(others, ['/elsewhere']);
  });

  test('attach(): other paths get 404 when no other upgrade listener is there', async () => {
    const echo = await startEchoServer();
    after(() => echo.close());
    const { server, base } = await appServer();
    const bridge = (await createUpgradeHandler({ path: '/ws', target: `127.0.0.1:${echo.port}`, logger: quiet })).attach(server);
    after(() => bridge.close());
    await assert.rejects(openClient(`ws://${base}/other`, 'binary'), /HTTP 404/);
    const ws = await openClient(`ws://${base}/ws`, 'binary');
    ws.close();
  });

  test('attach(): several handlers on one server each take their path; any other path gets 404 (never hangs), logged as refused', async () => {
    const echo = await startEchoServer();
    after(() => echo.close());
    const { server, base } = await appServer();
    const a = (await createUpgradeHandler({ path: '/a', target: `127.0.0.1:${echo.port}`, logger: quiet })).attach(server);
    const b = (await createUpgradeHandler({ path: '/b', target: `127.0.0.1:${echo.port}`, logger: quiet })).attach(server).attach(server);
    after(() => Promise.all([a.close(), b.close()]));
    const refused: number[] = [];
    a.on('refused', (_req, err) => refused.push(err.status));
    for (const path of ['/a', '/b']) {
      const ws = await openClient(`ws://${base}${path}`, 'binary');
      const received = collect(ws);
      ws.send(Buffer.from(path));
      ws.once('message', () => ws.close());
      assert.equal((await received).data.toString(), path);
    }
    await assert.rejects(openClient(`ws://${base}/c`, 'binary'), /HTTP 404/);
    assert.deepEqual(refused, [404]);
    assert.equal(server.listenerCount('upgrade'), 1);
  });

  test('the same admission as the proxy: token plugin objects, 404 for unknown tokens', async () => {
    const echo = await startEchoServer();
    after(() => echo.close());
    const { server, base } = await appServer();
    const tokens: TokenPlugin = {
      lookup: async (token) => (token === 'a' ? { kind: 'tcp', host: '127.0.0.1', port: echo.port } : undefined),
    };
    const bridge = (await createUpgradeHandler({ tokenPlugin: tokens, logger: quiet })).attach(server);
    after(() => bridge.close());
    await assert.rejects(openClient(`ws://${base}/?token=b`, 'binary'), /HTTP 404/);
    const ws = await openClient(`ws://${base}/?token=a`, 'binary');
    ws.close();
  });

  test('close(): open sessions end with 1001; later handshakes get 503', async () => {
    const echo = await startEchoServer();
    after(() => echo.close());
    const { server, base } = await appServer();
    const bridge = (await createUpgradeHandler({ target: `127.0.0.1:${echo.port}`, logger: quiet })).attach(server);
    const opened = once(bridge, 'session-open');
    const ws = await openClient(`ws://${base}/`, 'binary');
    const received = collect(ws);
    await opened;
    assert.equal(bridge.sessionCount, 1);
    await bridge.close();
    assert.equal((await received).code, 1001);
    assert.equal(bridge.sessionCount, 0);
    await assert.rejects(openClient(`ws://${base}/`, 'binary'), /HTTP 503/);
  });

  test('heartbeat: a client that answers pings stays, one that does not is dropped (1006, "Heartbeat timeout")', async () => {
    const echo = await startEchoServer();
    after(() => echo.close());
    const { server, base } = await appServer();
    const bridge = (await createUpgradeHandler({ target: `127.0.0.1:${echo.port}`, heartbeat: 0.2, logger: quiet })).attach(server);
    after(() => bridge.close());
    const ends: SessionEndInfo[] = [];
    bridge.on('session-close', (info) => ends.push(info));
    const answering = await openClient(`ws://${base}/`, 'binary');
    const silent = await openClient(`ws://${base}/`, 'binary', { autoPong: false });
    let pings = 0;
    answering.on('ping', () => pings++);
    const dropped = collect(silent);
    assert.equal((await dropped).code, 1006);
    await waitUntil('the dropped session to end', () => ends.length === 1);
    assert.equal(ends[0]?.reason, 'Heartbeat timeout');
    await waitUntil('three pings to the answering client', () => pings >= 3);
    assert.equal(answering.readyState, answering.OPEN);
    answering.close();
  });

  test('logs through another program’s pino logger, such as Fastify’s (typed as the library takes it)', async () => {
    const echo = await startEchoServer();
    after(() => echo.close());
    const lines: string[] = [];
    const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => void lines.push(line) } } });
    const bridge = await createUpgradeHandler({ target: `127.0.0.1:${echo.port}`, logger: app.log });
    after(() => bridge.close());
    await app.listen({ port: 0, host: '127.0.0.1' });
    after(() => app.close());
    bridge.attach(app.server);
    const ended = once(bridge, 'session-close');
    const ws = await openClient(`ws://127.0.0.1:${(app.server.address() as net.AddressInfo).port}/`, 'binary');
    ws.close();
    await ended;
    const events = lines.map((line) => (JSON.parse(line) as { event?: string }).event);
    assert.ok(events.includes('open') && events.includes('close'), `Fastify's log has the session's lines: ${lines.join('')}`);
  });

  test('options that belong to the caller’s server are refused, not half-applied', async () => {
    await assert.rejects(
      createUpgradeHandler({ target: '127.0.0.1:9', logger: quiet, ...({ web: '/tmp' } as object) }),
      (err: unknown) => err instanceof UsageError && /web: not an option of an upgrade handler/.test(err.message),
    );
    // Giving up root, an inherited socket and the key's password belong to the server's process too.
    for (const [name, value] of [
      ['user', 'nobody'],
      ['listenFd', 3],
      ['keyPasswordFile', '/tmp/password'],
    ] as const) {
      await assert.rejects(
        createUpgradeHandler({ target: '127.0.0.1:9', logger: quiet, ...({ [name]: value } as object) }),
        (err: unknown) => err instanceof UsageError && new RegExp(`^${name}: not an option of an upgrade handler`).test(err.message),
      );
    }
    await assert.rejects(
      createUpgradeHandler({ path: 'websockify', target: '127.0.0.1:9', logger: quiet }),
      (err: unknown) => err instanceof UsageError && /path: expected a path beginning with '\/'/.test(err.message),
    );
    await assert.rejects(
      createUpgradeHandler({ logger: quiet }),
      (err: unknown) => err instanceof UsageError && /missing the target/.test(err.message),
    );
  });
});
