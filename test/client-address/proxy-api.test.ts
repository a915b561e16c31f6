import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { encodeProxyHeaderV2, type ProxyHeader } from '../../src/client-address/proxy-protocol.js';
import {
  type AuthRequest,
  createProxy,
  createUpgradeHandler,
  HttpError,
  type ProxyOptions,
  type ProxyServer,
  type SessionInfo,
  type TokenLookupRequest,
  type TokenPlugin,
  UsageError,
} from '../../src/index.js';
import { type CapturedLog, captureLog } from '../helpers/log-capture.js';
import { createPki, type Pki } from '../helpers/pki.js';
import { RawConnection } from '../helpers/raw-connection.js';
import { startEchoServer, startServer, type TestServer } from '../helpers/targets.js';
import { echoed } from '../helpers/ws-client.js';
import { headerThen, OTHER_PEER, openVia, PROXY_V2_LOCAL, proxyV1, startHeaderEchoTarget } from './support.js';

let echo: TestServer;
let pki: Pki;
let scratch: string;
const started: ProxyServer[] = [];
before(async () => {
  echo = await startEchoServer();
  pki = createPki();
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'wsfy-client-address-'));
});
after(async () => {
  await Promise.all(started.map((proxy) => proxy.close('test over')));
  await echo.close();
  pki.remove();
  fs.rmSync(scratch, { recursive: true, force: true });
});

/** A proxy through the public API on a free loopback port, logging into memory. */
async function listening(options: ProxyOptions): Promise<{ proxy: ProxyServer; port: number; log: CapturedLog }> {
  const log = captureLog();
  const proxy = createProxy({
    listen: '127.0.0.1:0',
    target: `127.0.0.1:${echo.port}`,
    logger: log.logger,
    refusalLogInterval: 0,
    ...options,
  });
  started.push(proxy);
  const where = await proxy.listen();
  return { proxy, port: Number(/:(\d+)$/.exec(where)?.[1]), log };
}

/** Opens a session and resolves with its SessionInfo once it has echoed a message. */
async function session(proxy: ProxyServer, open: () => ReturnType<typeof openVia>): Promise<SessionInfo> {
  const opened = once(proxy, 'session-open') as Promise<[SessionInfo]>;
  const ws = await open();
  assert.equal(await echoed(ws, 'after the header'), 'after the header');
  ws.close();
  return (await opened)[0];
}

const onlyLoopback1 = { trustedProxy: ['127.0.0.1'], proxyProtocol: true };

describe('--proxy-protocol', () => {
  test('a trusted peer’s v1 and v2 headers name the client in the session and its log line', async () => {
    const { proxy, port, log } = await listening(onlyLoopback1);
    const v1 = await session(proxy, () => openVia(port, '/', { preamble: proxyV1('203.0.113.7', 4711) }));
    assert.equal(v1.client, '203.0.113.7:4711');
    assert.match(v1.peer, /^127\.0\.0\.1:\d+$/);
    const line = await log.waitFor((e) => e.event === 'open' && e.client === '203.0.113.7:4711');
    assert.equal(line.peer, v1.peer);
    assert.match(String(line.msg), /203\.0\.113\.7:4711 via 127\.0\.0\.1:\d+ connected/);
    const header = encodeProxyHeaderV2({
      family: 6,
      source: { address: '2001:db8::7', port: 9 },
      destination: { address: '::1', port: 80 },
    });
    const v2 = await session(proxy, () => openVia(port, '/', { preamble: header }));
    assert.equal(v2.client, '[2001:db8::7]:9');
  });

  test('a header that arrives a byte at a time, with the handshake in the same packets, is read', async () => {
    const { proxy, port } = await listening(onlyLoopback1);
    const opened = once(proxy, 'session-open') as Promise<[SessionInfo]>;
    const raw = await RawConnection.open(port);
    const handshake = Buffer.from(
      'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    const bytes = Buffer.concat([
      encodeProxyHeaderV2({ family: 4, source: { address: '198.51.100.3', port: 1 }, destination: { address: '127.0.0.1', port: 2 } }),
      handshake,
    ]);
    await raw.writeSlowly([...bytes.subarray(0, 30)].map((byte) => Buffer.from([byte])).concat([bytes.subarray(30)]));
    assert.equal((await raw.head())?.status, 101);
    assert.equal((await opened)[0].client, '198.51.100.3:1');
    raw.destroy();
  });

  test('a v2 header for a Unix socket client names no address: unix-socket', async () => {
    const { proxy, port } = await listening(onlyLoopback1);
    const paths = Buffer.alloc(216);
    paths.write('/run/client.sock');
    const header = Buffer.concat([Buffer.from('0d0a0d0a000d0a515549540a213100d8', 'hex'), paths]);
    const info = await session(proxy, () => openVia(port, '/', { preamble: header }));
    assert.equal(info.client, 'unix-socket');
  });

  test('a trusted peer that closes in the middle of its header is refused and logged', async () => {
    const { port, log } = await listening(onlyLoopback1);
    const raw = await RawConnection.open(port);
    raw.socket.end('PROXY TCP4 1.2.3.4');
    await log.waitFor((e) => e.event === 'refused' && e.reason === 'closed before the end of its PROXY protocol header');
    assert.ok(await raw.waitClosed());
  });

  test('v2 LOCAL (a health check) and v1 UNKNOWN leave the connection’s own address', async () => {
    const { proxy, port } = await listening(onlyLoopback1);
    for (const preamble of [PROXY_V2_LOCAL, Buffer.from('PROXY UNKNOWN\r\n')]) {
      const info = await session(proxy, () => openVia(port, '/', { preamble }));
      assert.equal(info.client, info.peer);
      assert.match(info.client, /^127\.0\.0\.1:\d+$/);
    }
  });

  test('an untrusted peer that sends a header is refused and logged; without one it is served as usual', async () => {
    const { proxy, port, log } = await listening(onlyLoopback1);
    await assert.rejects(openVia(port, '/', { preamble: proxyV1('203.0.113.7', 4711), from: OTHER_PEER }));
    const refused = await log.waitFor((e) => e.event === 'refused' && String(e.client).startsWith(`${OTHER_PEER}:`));
    assert.equal(refused.reason, 'PROXY protocol header from a peer that is not a --trusted-proxy');
    const plain = await session(proxy, () => openVia(port, '/', { from: OTHER_PEER }));
    assert.match(plain.client, /^127\.0\.0\.2:\d+$/);
  });

  test('a trusted peer that sends no header, a malformed one or a second one is refused and logged', async () => {
    const { port, log } = await listening(onlyLoopback1);
    await assert.rejects(openVia(port, '/'));
    await log.waitFor((e) => e.event === 'refused' && e.reason === 'no PROXY protocol header from a --trusted-proxy peer');
    await assert.rejects(openVia(port, '/', { preamble: Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n') }));
    await log.waitFor((e) => e.event === 'refused' && e.reason === 'bad PROXY protocol header: v1 header with malformed ports');
    await assert.rejects(openVia(port, '/', { preamble: Buffer.concat([proxyV1('203.0.113.7', 1), proxyV1('203.0.113.8', 2)]) }));
    await log.waitFor((e) => e.event === 'refused' && e.reason === 'a second PROXY protocol header');
    // A connection that closes without a byte (a TCP health check) is not worth an info line.
    const check = net.connect({ host: '127.0.0.1', port });
    await once(check, 'connect');
    check.end();
    await log.waitFor((e) => e.event === 'proxy-header-none');
  });

  test('TLS on the same port after the header: the TLS socket keeps the client the header named', async () => {
    const server = pki.issue('pp-server', pki.ca);
    const { proxy, port, log } = await listening({ ...onlyLoopback1, cert: server.cert, key: server.key });
    const ca = fs.readFileSync(pki.ca.cert);
    const info = await session(proxy, () => openVia(port, '/', { preamble: proxyV1('203.0.113.9', 443), ca }));
    assert.equal(info.client, '203.0.113.9:443');
    // A failed TLS handshake names the client too.
    await assert.rejects(openVia(port, '/', { preamble: proxyV1('203.0.113.10', 1), ca: fs.readFileSync(pki.otherCa.cert) }));
    await log.waitFor((e) => e.event === 'tls-failed' && e.client === '203.0.113.10:1');
  });
});

describe('X-Forwarded-For and Forwarded', () => {
  test('from a trusted peer they name the client; Forwarded is preferred; from others they are ignored with a debug line', async () => {
    const { proxy, port, log } = await listening({ trustedProxy: ['127.0.0.1/32', '10.0.0.0/8'] });
    const headers = { 'X-Forwarded-For': '192.0.2.1, 203.0.113.7, 10.0.0.2' };
    assert.equal((await session(proxy, () => openVia(port, '/', { options: { headers } }))).client, '203.0.113.7');
    const both = { ...headers, Forwarded: 'for="[2001:db8::5]:4711";proto=https' };
    assert.equal((await session(proxy, () => openVia(port, '/', { options: { headers: both } }))).client, '[2001:db8::5]:4711');
    const spoofed = await session(proxy, () => openVia(port, '/', { from: OTHER_PEER, options: { headers } }));
    assert.match(spoofed.client, /^127\.0\.0\.2:\d+$/);
    const ignored = await log.waitFor((e) => e.event === 'forwarded-ignored');
    assert.equal(ignored.header, 'X-Forwarded-For');
    assert.match(String(ignored.client), /^127\.0\.0\.2:/);
  });

  test('without --trusted-proxy nobody is believed', async () => {
    const { proxy, port } = await listening({});
    const info = await session(proxy, () => openVia(port, '/', { options: { headers: { 'X-Forwarded-For': '203.0.113.7' } } }));
    assert.equal(info.client, info.peer);
  });

  test('--web request lines and refusals name the real client', async () => {
    const web = path.join(scratch, 'web');
    fs.mkdirSync(web, { recursive: true });
    fs.writeFileSync(path.join(web, 'index.html'), 'hello');
    const { port, log } = await listening({ trustedProxy: ['127.0.0.1'], web });
    const page = await fetch(`http://127.0.0.1:${port}/`, { headers: { 'X-Forwarded-For': '203.0.113.20' } });
    assert.equal(await page.text(), 'hello');
    const line = await log.waitFor((e) => e.event === 'web');
    assert.equal(line.client, '203.0.113.20');
    assert.match(String(line.msg), /^web GET \/ 200 from 203\.0\.113\.20$/);
    // A handshake without Connection: Upgrade reaches the request handler, which refuses it with 400.
    const status = await new Promise<number | undefined>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port, path: '/', headers: { Upgrade: 'websocket', Forwarded: 'for=203.0.113.21' } }, (res) => {
          res.resume();
          resolve(res.statusCode);
        })
        .on('error', reject);
    });
    assert.equal(status, 400);
    const refusal = await log.waitFor((e) => e.event === 'refused' && e.status === 400);
    assert.equal(refusal.client, '203.0.113.21');
  });
});

describe('plugins see the real client', () => {
  test('the auth plugin’s remoteAddress and peerAddress; the token plugin’s lookup request; --allow-target refusals', async () => {
    const seen: { auth?: AuthRequest; lookup?: TokenLookupRequest } = {};
    const tokens: TokenPlugin = {
      lookup: async (token, request) => {
        if (request) seen.lookup = request;
        return token === 'far' ? { kind: 'tcp', host: '192.0.2.1', port: 5900 } : { kind: 'tcp', host: '127.0.0.1', port: echo.port };
      },
    };
    const auth = {
      authenticate: (request: AuthRequest) => {
        seen.auth = request;
        if (request.remoteAddress === '198.51.100.66') throw new HttpError(403, 'banned');
      },
    };
    const { proxy, port, log } = await listening({
      target: undefined,
      tokenPlugin: tokens,
      authPlugin: auth,
      allowTarget: ['127.0.0.1'],
      trustedProxy: ['127.0.0.1'],
      proxyProtocol: true,
    });
    await session(proxy, () => openVia(port, '/?token=near', { preamble: proxyV1('203.0.113.7', 4711) }));
    assert.equal(seen.auth?.remoteAddress, '203.0.113.7');
    assert.equal(seen.auth?.peerAddress, '127.0.0.1');
    assert.deepEqual(seen.lookup, { client: '203.0.113.7:4711', remoteAddress: '203.0.113.7' });
    await assert.rejects(openVia(port, '/?token=near', { preamble: proxyV1('198.51.100.66', 1) }), /HTTP 403/);
    assert.equal((await log.waitFor((e) => e.event === 'refused' && e.reason === 'banned')).client, '198.51.100.66:1');
    await assert.rejects(openVia(port, '/?token=far', { preamble: proxyV1('203.0.113.8', 2) }), /HTTP 403/);
    const policy = await log.waitFor((e) => e.event === 'refused' && String(e.reason).includes('--allow-target'));
    assert.equal(policy.client, '203.0.113.8:2');
  });
});

describe('--target-proxy-protocol', () => {
  test('each target connection begins with a v2 header: the real client, and the address it connected to', async () => {
    const target = await startHeaderEchoTarget();
    after(() => target.close());
    const { proxy, port } = await listening({ target: `127.0.0.1:${target.port}`, targetProxyProtocol: true, ...onlyLoopback1 });
    await session(proxy, () => openVia(port, '/', { preamble: proxyV1('203.0.113.7', 4711, '192.0.2.80', 443) }));
    assert.deepEqual(target.headers[0], {
      version: 2,
      command: 'proxy',
      addresses: { family: 4, source: { address: '203.0.113.7', port: 4711 }, destination: { address: '192.0.2.80', port: 443 } },
    });
  });

  test('a client named by X-Forwarded-For (no port: 0), a mixed pair sent as IPv6, and a Unix socket target', async () => {
    const file = path.join(scratch, 'pp-target.sock');
    const headers: ProxyHeader[] = [];
    const unixTarget = net.createServer(headerThen(headers));
    await new Promise<void>((resolve) => unixTarget.listen(file, resolve));
    after(() => new Promise((resolve) => unixTarget.close(resolve)));
    const { proxy, port } = await listening({
      target: undefined,
      unixTarget: file,
      targetProxyProtocol: true,
      trustedProxy: ['127.0.0.1'],
    });
    await session(proxy, () => openVia(port, '/', { options: { headers: { 'X-Forwarded-For': '203.0.113.7' } } }));
    await session(proxy, () => openVia(port, '/', { options: { headers: { 'X-Forwarded-For': '2001:db8::9' } } }));
    assert.deepEqual(headers[0]?.addresses, {
      family: 4,
      source: { address: '203.0.113.7', port: 0 },
      destination: { address: '127.0.0.1', port },
    });
    assert.deepEqual(headers[1]?.addresses, {
      family: 6,
      source: { address: '2001:db8::9', port: 0 },
      destination: { address: '::ffff:127.0.0.1', port },
    });
  });

  test('with --ssl-target the header goes on the raw connection, before TLS', async () => {
    const issued = pki.issue('pp-target', pki.ca);
    const secure = tls.createServer({ cert: fs.readFileSync(issued.cert), key: fs.readFileSync(issued.key) }, (socket) =>
      socket.pipe(socket),
    );
    const headers: ProxyHeader[] = [];
    const target = await startServer(headerThen(headers, (socket) => secure.emit('connection', socket)));
    after(() => target.close());
    const { proxy, port } = await listening({
      target: `localhost:${target.port}`,
      sslTarget: true,
      sslTargetCa: pki.ca.cert,
      targetProxyProtocol: true,
      ...onlyLoopback1,
    });
    await session(proxy, () => openVia(port, '/', { preamble: proxyV1('203.0.113.7', 4711) }));
    assert.deepEqual(headers[0]?.addresses, {
      family: 4,
      source: { address: '203.0.113.7', port: 4711 },
      destination: { address: '127.0.0.1', port: 6080 },
    });
  });
});

describe('options', () => {
  test('usage errors name the flag', () => {
    assert.throws(() => createProxy({ listen: 0, target: 'a:1', trustedProxy: ['10.0.0.0/33'] }), /--trusted-proxy: invalid prefix length/);
    assert.throws(
      () => createProxy({ listen: 0, target: 'a:1', trustedProxy: ['proxy.local'] }),
      /--trusted-proxy: 'proxy.local' is not an IP address/,
    );
    assert.throws(() => createProxy({ listen: 0, target: 'a:1', proxyProtocol: true }), /--proxy-protocol needs --trusted-proxy/);
    assert.throws(
      () => createProxy({ unixListen: '/tmp/x.sock', target: 'a:1', proxyProtocol: true, trustedProxy: ['127.0.0.1'] }),
      /--proxy-protocol needs a TCP listener/,
    );
  });

  test('an upgrade handler takes trustedProxy for forwarding headers, and refuses proxyProtocol', async () => {
    const log = captureLog();
    await assert.rejects(
      createUpgradeHandler({ target: `127.0.0.1:${echo.port}`, ...({ proxyProtocol: true } as object) }),
      (err: Error) => err instanceof UsageError && /proxyProtocol: not an option of an upgrade handler/.test(err.message),
    );
    const handler = await createUpgradeHandler({
      path: '/ws',
      target: `127.0.0.1:${echo.port}`,
      trustedProxy: ['127.0.0.1'],
      logger: log.logger,
    });
    after(() => handler.close());
    const server = http.createServer();
    handler.attach(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    after(() => new Promise((resolve) => server.close(resolve)));
    const port = (server.address() as net.AddressInfo).port;
    const opened = once(handler, 'session-open') as Promise<[SessionInfo]>;
    const ws = await openVia(port, '/ws', { options: { headers: { Forwarded: 'for=203.0.113.30' } } });
    assert.equal(await echoed(ws, 'x'), 'x');
    ws.close();
    assert.equal((await opened)[0].client, '203.0.113.30');
    await assert.rejects(openVia(port, '/elsewhere', { options: { headers: { Forwarded: 'for=203.0.113.31' } } }), /HTTP 404/);
    assert.equal((await log.waitFor((e) => e.event === 'refused' && e.status === 404)).client, '203.0.113.31');
  });
});
