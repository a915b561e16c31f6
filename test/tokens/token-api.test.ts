// BaseTokenAPI and JSONTokenApi against an HTTP token service run by the test: answers in both formats,
// unknown tokens, a failing service, an unreachable one, and one that never answers (the timeout).
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type RunningProxy, runCli, startProxy } from '../helpers/proxy.js';
import { type TestServer, unusedPort } from '../helpers/targets.js';
import { attempt, startNamedServer } from './support.js';

let a: TestServer;
let b: TestServer;
let api: http.Server;
let apiPort: number;
/** The paths the service was asked for, to check how the token was put in the URL. */
const asked: string[] = [];
const hanging = new Set<http.ServerResponse>();

before(async () => {
  [a, b] = await Promise.all([startNamedServer('server A'), startNamedServer('server B')]);
  api = http.createServer((req, res) => {
    asked.push(req.url ?? '');
    const [, format, token] = /^\/(text|json)\/(.*)$/.exec(req.url ?? '') ?? [];
    const targets: Record<string, number> = { alpha: a.port, 'b%20b%2Fb': b.port };
    if (token === 'slow') return void hanging.add(res); // never answered
    if (token === 'boom') return void res.writeHead(500).end('database on fire');
    if (token === 'garbled') return void res.end(format === 'json' ? '{"host": ' : 'no port here');
    const port = token === undefined ? undefined : targets[token];
    if (port === undefined) return void res.writeHead(404).end('no such token');
    res.end(format === 'json' ? JSON.stringify({ host: '127.0.0.1', port }) : `127.0.0.1:${port}\n`);
  });
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
  apiPort = (api.address() as net.AddressInfo).port;
});
after(async () => {
  for (const res of hanging) res.destroy();
  api.closeAllConnections();
  await new Promise((resolve) => api.close(resolve));
  await Promise.all([a.close(), b.close()]);
});

describe('BaseTokenAPI (host:port as text)', () => {
  let proxy: RunningProxy;
  before(async () => {
    proxy = await startProxy(['--token-plugin', 'BaseTokenAPI', '--token-source', `http://127.0.0.1:${apiPort}/text/%s`, '127.0.0.1:0']);
  });
  after(async () => {
    await proxy.stop();
  });

  test('the answer names the target; the token is URL-encoded into the URL', async () => {
    assert.deepEqual(await attempt(`${proxy.url}/?token=alpha`), { status: 101, said: 'server A' });
    assert.deepEqual(await attempt(`${proxy.url}/?token=${encodeURIComponent('b b/b')}`), { status: 101, said: 'server B' });
    assert.ok(asked.includes('/text/b%20b%2Fb'), `asked: ${asked.join(' ')}`);
  });

  test('404 from the service: unknown token (404); 500 or an unusable answer: 503', async () => {
    assert.equal((await attempt(`${proxy.url}/?token=nobody`)).status, 404);
    const failed = await attempt(`${proxy.url}/?token=boom`);
    assert.equal(failed.status, 503);
    assert.match((failed as { body: string }).body, /answered 500/);
    assert.equal((await attempt(`${proxy.url}/?token=garbled`)).status, 503);
    await proxy.waitForEvent((e) => e.event === 'token-api-error');
  });

  test('a service that never answers: 503 after the lookup timeout, and the proxy carries on', async () => {
    const outcome = await attempt(`${proxy.url}/?token=slow`);
    assert.equal(outcome.status, 503);
    assert.match((outcome as { body: string }).body, /no answer within \d+ ms/);
    await proxy.waitForEvent((e) => e.event === 'refused' && e.status === 503 && /no answer/.test(String(e.reason)));
    assert.deepEqual(await attempt(`${proxy.url}/?token=alpha`), { status: 101, said: 'server A' });
  });
});

describe('JSONTokenApi ({"host": ..., "port": ...})', () => {
  test('the JSON answer names the target; unknown, malformed and unreachable as for text', async () => {
    const proxy = await startProxy([
      '--token-plugin',
      'JSONTokenApi',
      '--token-source',
      `http://127.0.0.1:${apiPort}/json/%s`,
      '127.0.0.1:0',
    ]);
    try {
      assert.deepEqual(await attempt(`${proxy.url}/?token=alpha`), { status: 101, said: 'server A' });
      assert.equal((await attempt(`${proxy.url}/?token=nobody`)).status, 404);
      assert.equal((await attempt(`${proxy.url}/?token=garbled`)).status, 503);
    } finally {
      await proxy.stop();
    }
    const down = await startProxy([
      '--token-plugin',
      'JSONTokenApi',
      '--token-source',
      `http://127.0.0.1:${await unusedPort()}/json/%s`,
      '127.0.0.1:0',
    ]);
    try {
      const outcome = await attempt(`${down.url}/?token=alpha`);
      assert.equal(outcome.status, 503);
      assert.match((outcome as { body: string }).body, /ECONNREFUSED/);
    } finally {
      await down.stop();
    }
  });

  test('a source that is not an http URL with %s stops the start', async () => {
    const noSlot = await runCli(['--token-plugin', 'JSONTokenApi', '--token-source', 'http://127.0.0.1:1/lookup', '127.0.0.1:0']);
    assert.equal(noSlot.code, 1);
    assert.match(noSlot.stderr, /has no %s where the token goes/);
    const notHttp = await runCli(['--token-plugin', 'BaseTokenAPI', '--token-source', 'file:///etc/%s', '127.0.0.1:0']);
    assert.equal(notHttp.code, 1);
    assert.match(notHttp.stderr, /not an http or https URL/);
  });
});
