import assert from 'node:assert/strict';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import {
  type AuthPlugin,
  builtInTokenPlugins,
  createProxy,
  HttpError,
  type ProxyServer,
  type SessionEndInfo,
  type SessionInfo,
  StartupError,
  type TokenPlugin,
  UsageError,
} from '../../src/index.js';
import { startEchoServer, unusedPort } from '../helpers/targets.js';
import { collect, openClient } from '../helpers/ws-client.js';

const quiet = pino({ level: 'silent' });
const started: ProxyServer[] = [];
after(async () => {
  await Promise.all(started.map((proxy) => proxy.close('test over')));
});

/** A proxy made through the public API, listening on a loopback port of the kernel's choice. */
async function listening(options: Parameters<typeof createProxy>[0]): Promise<{ proxy: ProxyServer; url: string }> {
  const proxy = createProxy({ listen: '127.0.0.1:0', logger: quiet, ...options });
  started.push(proxy);
  const where = await proxy.listen();
  return { proxy, url: `ws://${where}` };
}

describe('createProxy', () => {
  test('listens, bridges a session both ways, and reports its opening and end with the facts of the log line', async () => {
    const echo = await startEchoServer();
    after(() => echo.close());
    const { proxy, url } = await listening({ target: `127.0.0.1:${echo.port}` });
    const opened: SessionInfo[] = [];
    proxy.on('session-open', (info) => opened.push(info));
    const closed = once(proxy, 'session-close') as Promise<[SessionEndInfo]>;
    const ws = await openClient(`${url}/path?x=1`, 'binary');
    const received = collect(ws);
    ws.send(Buffer.from('hello through the library'));
    await new Promise<void>((resolve) => ws.once('message', () => resolve()));
    ws.close(1000, 'done');
    const [end] = await closed;
    assert.equal((await received).data.toString(), 'hello through the library');
    assert.equal(opened.length, 1);
    assert.equal(opened[0]?.target, `127.0.0.1:${echo.port}`);
    assert.equal(opened[0]?.protocol, 'binary');
    assert.equal(opened[0]?.path, '/path?x=1');
    assert.match(opened[0]?.client ?? '', /^127\.0\.0\.1:\d+$/);
    assert.equal(end.id, opened[0]?.id);
    assert.equal(end.bytesFromClient, 25);
    assert.equal(end.bytesFromTarget, 25);
    assert.equal(end.code, 1000);
    assert.equal(end.initiator, 'client');
  });

  test('close() ends open sessions with 1001 after what is in flight, then emits close; a second close() is the same promise', async () => {
    const echo = await startEchoServer();
    after(() => echo.close());
    const { proxy, url } = await listening({ target: `127.0.0.1:${echo.port}` });
    const opened = once(proxy, 'session-open');
    const ws = await openClient(url, 'binary');
    const received = collect(ws);
    await opened;
    let closeEvents = 0;
    proxy.on('close', () => closeEvents++);
    await Promise.all([proxy.close('test'), proxy.close('again')]);
    assert.equal(closeEvents, 1);
    assert.equal((await received).code, 1001);
    await assert.rejects(openClient(url, 'binary'));
  });

  test('idle when the last session ends; the closing facts go to listeners that were there when the session opened', async () => {
    const echo = await startEchoServer();
    after(() => echo.close());
    const { proxy, url } = await listening({ target: `127.0.0.1:${echo.port}` });
    const first = await openClient(url, 'binary');
    const heard: number[] = [];
    proxy.on('session-close', (info) => heard.push(info.id));
    const second = await openClient(url, 'binary');
    const idle = once(proxy, 'idle');
    first.close();
    second.close();
    await idle;
    const third = await openClient(url, 'binary');
    const ended = once(proxy, 'session-close');
    third.close();
    await ended;
    assert.deepEqual(heard, [2, 3], 'session 1 opened before the listener was added');
  });

  test('runOnce: the proxy stops by itself when its one session ends', async () => {
    const echo = await startEchoServer();
    after(() => echo.close());
    const { proxy, url } = await listening({ target: `127.0.0.1:${echo.port}`, runOnce: true });
    const ws = await openClient(url, 'binary');
    ws.close();
    await proxy.closed;
  });

  test('plugin objects: a token plugin chooses the target, an auth plugin refuses with its own status', async () => {
    const echo = await startEchoServer();
    after(() => echo.close());
    const tokens: TokenPlugin = {
      lookup: async (token) => (token === 'good' ? { kind: 'tcp', host: '127.0.0.1', port: echo.port } : undefined),
    };
    const auth: AuthPlugin = {
      authenticate: (request) => {
        if (request.headers['x-key'] !== 'sesame') throw new HttpError(403, 'no key');
      },
    };
    const { proxy, url } = await listening({ tokenPlugin: tokens, authPlugin: auth });
    const refusals: number[] = [];
    proxy.on('refused', (_req, err) => refusals.push(err.status));
    await assert.rejects(openClient(`${url}/?token=good`, 'binary'), /HTTP 403/);
    await assert.rejects(openClient(`${url}/?token=bad`, 'binary', { headers: { 'x-key': 'sesame' } }), /HTTP 404/);
    const ws = await openClient(`${url}/?token=good`, 'binary', { headers: { 'x-key': 'sesame' } });
    const received = collect(ws);
    ws.send(Buffer.from('ping'));
    ws.once('message', () => ws.close());
    assert.equal((await received).data.toString(), 'ping');
    assert.deepEqual(refusals, [403, 404]);
  });

  test('a built-in plugin built by the program (builtInTokenPlugins) and wrapped, then given as an object', async () => {
    const echo = await startEchoServer();
    after(() => echo.close());
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'api-tokens-'));
    after(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.writeFileSync(path.join(dir, 'tokens'), `vnc: 127.0.0.1:${echo.port}\n`);
    const file = await builtInTokenPlugins.TokenFile?.(path.join(dir, 'tokens'), { logger: quiet, timeoutMs: 3000 });
    assert.ok(file);
    const looked: string[] = [];
    const audited: TokenPlugin = {
      lookup: (token) => {
        looked.push(token);
        return file.lookup(token);
      },
      close: () => file.close?.(),
    };
    const { url } = await listening({ tokenPlugin: audited });
    const ws = await openClient(`${url}/?token=vnc`, 'binary');
    ws.close();
    await assert.rejects(openClient(`${url}/?token=other`, 'binary'), /HTTP 404/);
    assert.deepEqual(looked, ['vnc', 'other']);
  });

  test('a token plugin object that throws is the source being down: 503, and the proxy carries on', async () => {
    const tokens: TokenPlugin = {
      lookup: () => {
        throw new Error('database unreachable');
      },
    };
    const { url } = await listening({ tokenPlugin: tokens });
    await assert.rejects(openClient(`${url}/?token=any`, 'binary'), /HTTP 503/);
    await assert.rejects(openClient(`${url}/?token=any`, 'binary'), /HTTP 503/);
  });

  test('allowTarget refuses a target outside the patterns with 403', async () => {
    const echo = await startEchoServer();
    after(() => echo.close());
    const { url } = await listening({ target: `127.0.0.1:${echo.port}`, allowTarget: ['127.0.0.1:1-1024'] });
    await assert.rejects(openClient(url, 'binary'), /HTTP 403/);
  });

  test('a port in use is a StartupError, and the token plugin it loaded is closed again', async () => {
    const { proxy } = await listening({ target: '127.0.0.1:9' });
    let closedPlugin = false;
    const tokens: TokenPlugin = {
      lookup: async () => undefined,
      close: () => {
        closedPlugin = true;
      },
    };
    const second = createProxy({ listen: proxy.address ?? '', tokenPlugin: tokens, logger: quiet });
    await assert.rejects(second.listen(), (err: unknown) => err instanceof StartupError && /address already in use/.test(err.message));
    assert.equal(closedPlugin, true);
  });

  test('recording through the API writes FILE.<session number>', async () => {
    const echo = await startEchoServer();
    after(() => echo.close());
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'api-record-'));
    after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const { proxy, url } = await listening({ target: `127.0.0.1:${echo.port}`, record: path.join(dir, 'session') });
    const ended = once(proxy, 'session-close') as Promise<[SessionEndInfo]>;
    const ws = await openClient(url, 'binary');
    ws.send(Buffer.from('recorded bytes'));
    ws.once('message', () => ws.close());
    const [info] = await ended;
    await proxy.close('test');
    const text = fs.readFileSync(path.join(dir, `session.${info.id}`), 'utf8');
    assert.match(text, /EOF/);
  });

  test('options are checked as the command line checks its flags: UsageError naming the option', () => {
    const bad: Array<[Parameters<typeof createProxy>[0], RegExp]> = [
      [{ target: '127.0.0.1:5900' }, /missing the listen address/],
      [{ listen: 0 }, /missing the target/],
      [{ listen: 0, target: 'nohost' }, /expected target_addr:target_port/],
      [{ listen: 0, target: 'h:1', tokenPlugin: 'TokenFile' }, /token plugin .* chooses each connection's target/],
      [{ listen: 0, target: 'h:1', tokenPlugin: 'NoSuchPlugin' }, /unknown plugin 'NoSuchPlugin'/],
      [{ listen: 0, target: 'h:1', heartbeat: -1 }, /--heartbeat: expected a number of seconds/],
      [{ listen: 0, target: 'h:1', timeout: Number.NaN }, /--timeout: expected a number of seconds/],
      [{ listen: 0, target: 'h:1', maxMessageSize: 1.5 }, /--max-message-size: expected a positive number of bytes/],
      [{ listen: 0, target: 'h:1', maxMessageSize: 2048, maxUnfinished: 1024 }, /--max-unfinished: 1024 is below --max-message-size/],
      [{ listen: 0, target: 'h:1', webAuth: true }, /--web-auth needs --auth-plugin/],
      [{ listen: 0, target: 'h:1', allowTarget: ['bad pattern!'] }, /--allow-target/],
      [{ listen: 70000, target: 'h:1' }, /invalid port/],
      [{ listen: 0, target: 'h:1', unixListenMode: 0o1777 }, /--unix-listen-mode/],
    ];
    for (const [options, message] of bad) {
      assert.throws(
        () => createProxy({ ...options, logger: quiet }),
        (err: unknown) => err instanceof UsageError && message.test(err.message),
        `${JSON.stringify(options)} should fail with ${message}`,
      );
    }
  });

  test('listen() resolves with the address, which address then reports', async () => {
    const port = await unusedPort();
    const proxy = createProxy({ listen: `127.0.0.1:${port}`, target: '127.0.0.1:9', logger: quiet });
    started.push(proxy);
    assert.equal(await proxy.listen(), `127.0.0.1:${port}`);
    assert.equal(proxy.address, `127.0.0.1:${port}`);
    await assert.rejects(proxy.listen(), /listen\(\) was called already/);
  });
});
