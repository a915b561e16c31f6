// The limits as library options: createProxy and createUpgradeHandler (a user's server, which has no
// accept stage: both counts are taken at the handshake), the 'refused' event's kind, usage errors.
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { createProxy, createUpgradeHandler, type HttpError, TokenRejectedError, UsageError } from '../../src/index.js';
import { captureLog } from '../helpers/log-capture.js';
import { startEchoServer } from '../helpers/targets.js';
import { waitUntil } from '../helpers/wait.js';
import { echoed, openClient } from '../helpers/ws-client.js';

const quiet = pino({ level: 'silent' });

/** The status a handshake to `url` is refused with (the test expects a refusal). */
async function refusedWith(url: string, options: Parameters<typeof openClient>[2] = {}): Promise<string> {
  const err = await openClient(url, undefined, options).then(
    (ws) => {
      ws.close();
      return new Error('opened');
    },
    (e: Error) => e,
  );
  return err.message;
}

/**
 * The refusal of a handshake once a place is free: a refused connection holds its place until it has
 * closed, a moment after its answer.
 */
function refusedOnceFree(url: string, options: Parameters<typeof openClient>[2] = {}): Promise<string> {
  return waitUntil('a free place', async () => {
    const outcome = await refusedWith(url, options);
    return outcome === 'HTTP 503' ? undefined : outcome;
  });
}

describe('limits as library options', () => {
  test('createProxy: maxConnectionsPerIp and maxHandshakeRate refuse with 503 and 429; the refused event carries the kind', async () => {
    const echo = await startEchoServer();
    after(() => echo.close());
    const log = captureLog();
    const proxy = createProxy({
      listen: '127.0.0.1:0',
      target: `127.0.0.1:${echo.port}`,
      logger: log.logger,
      maxConnectionsPerIp: 1,
      maxHandshakeRate: 5,
    });
    after(() => proxy.close());
    const kinds: Array<string | undefined> = [];
    proxy.on('refused', (_req, err: HttpError) => kinds.push(err.kind));
    const url = `ws://${await proxy.listen()}`;
    const ws = await openClient(url);
    // Refused at accept (a direct client), before any request: answered and logged, no request event.
    assert.equal(await refusedWith(url), 'HTTP 503');
    await log.waitFor((e) => e.event === 'refused' && e.kind === 'limit');
    ws.close();
    const statuses: string[] = [];
    for (let i = 0; i < 8; i++) {
      statuses.push(await refusedOnceFree(url));
    }
    assert.ok(statuses.includes('HTTP 429'), `no 429 among ${statuses.join(', ')}`);
    assert.ok(kinds.includes('rate'));
  });

  test('createUpgradeHandler: maxConnections, banAfter and allowOrigin on a server the caller runs', async () => {
    const echo = await startEchoServer();
    after(() => echo.close());
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    after(() => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    });
    const base = `ws://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    const handler = await createUpgradeHandler({
      target: `127.0.0.1:${echo.port}`,
      logger: quiet,
      maxConnections: 1,
      allowOrigin: ['https://app.example'],
      authPlugin: 'BasicHTTPAuth',
      authSource: 'u:p',
      banAfter: 2,
      banTime: 60,
    });
    after(() => handler.close());
    handler.attach(server);
    const kinds: Array<string | undefined> = [];
    handler.on('refused', (_req, err: HttpError) => kinds.push(err.kind));
    const auth = (password: string): Record<string, string> => ({
      Authorization: `Basic ${Buffer.from(`u:${password}`).toString('base64')}`,
    });
    const ws = await openClient(base, undefined, { origin: 'https://app.example', headers: auth('p') });
    assert.equal(await echoed(ws, 'one'), 'one');
    assert.equal(await refusedWith(base, { origin: 'https://app.example', headers: auth('p') }), 'HTTP 503');
    ws.close();
    await waitUntil('the session ended', () => handler.sessionCount === 0);
    assert.equal(await refusedOnceFree(base, { origin: 'https://other.example', headers: auth('p') }), 'HTTP 403');
    assert.equal(await refusedOnceFree(base, { origin: 'https://app.example', headers: auth('x') }), 'HTTP 401');
    assert.equal(await refusedOnceFree(base, { origin: 'https://app.example', headers: auth('y') }), 'HTTP 401');
    assert.equal(await refusedOnceFree(base, { origin: 'https://app.example', headers: auth('p') }), 'HTTP 403');
    assert.deepEqual(
      kinds.filter((kind, i) => kind !== 'limit' || i === 0),
      ['limit', 'origin', 'auth', 'auth', 'ban'],
    );
  });

  test('banAfter counts unknown and refused tokens: a guessed token and an expired one ban the address', async () => {
    const echo = await startEchoServer();
    after(() => echo.close());
    const proxy = createProxy({
      listen: '127.0.0.1:0',
      logger: quiet,
      banAfter: 2,
      banTime: 60,
      tokenPlugin: {
        async lookup(token) {
          if (token === 'expired') throw new TokenRejectedError('token expired');
          return token === 'good' ? { kind: 'tcp' as const, host: '127.0.0.1', port: echo.port } : undefined;
        },
      },
    });
    after(() => proxy.close());
    const kinds: Array<string | undefined> = [];
    proxy.on('refused', (_req, err: HttpError) => kinds.push(err.kind));
    const url = `ws://${await proxy.listen()}`;
    assert.equal(await refusedWith(`${url}/?token=guess`), 'HTTP 404');
    assert.equal(await refusedWith(`${url}/?token=expired`), 'HTTP 403');
    assert.equal(await refusedWith(`${url}/?token=good`), 'HTTP 403');
    assert.deepEqual(kinds, ['unknown_token', 'token_rejected', 'ban']);
  });

  test('malformed limits are usage errors naming the option', () => {
    const base = { listen: 0, target: '127.0.0.1:9' };
    assert.throws(
      () => createProxy({ ...base, maxConnections: -1 }),
      (e) => e instanceof UsageError && /--max-connections: expected a whole number/.test(e.message),
    );
    assert.throws(() => createProxy({ ...base, maxConnectionsPerIp: 1.5 }), /--max-connections-per-ip: expected a whole number/);
    assert.throws(() => createProxy({ ...base, maxHandshakeRate: Number.NaN }), /--max-handshake-rate/);
    assert.throws(() => createProxy({ ...base, maxSessionDuration: -2 }), /--max-session-duration: expected a number of seconds/);
    assert.throws(() => createProxy({ ...base, banTime: 5 }), /--ban-time needs --ban-after/);
    assert.throws(() => createProxy({ ...base, banAfter: 3, banTime: 0 }), /--ban-time: expected a number of seconds above 0/);
    assert.throws(() => createProxy({ ...base, allowOrigin: ['example.com'] }), /--allow-origin: 'example.com' is not an origin/);
    assert.throws(() => createProxy({ ...base, refusalLogInterval: -1 }), /--refusal-log-interval/);
  });
});
