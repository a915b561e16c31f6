// Where the token is read, through the real CLI with TokenFile: ?token= first, then --token-header, then
// --token-cookie; malformed cookies and repeated headers refused with 400; the flags' usage errors.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { createUpgradeHandler, type TokenPlugin, UsageError } from '../../src/index.js';
import { type RunningProxy, runCli, startProxy, startTokenFileProxy } from '../helpers/proxy.js';
import type { TestServer } from '../helpers/targets.js';
import { attempt, type Outcome, startNamedServer, tempDir } from '../tokens/support.js';

/** The body of a refusal, asserting its status. */
function refusedWith(outcome: Outcome, status: number): string {
  assert.equal(outcome.status, status, JSON.stringify(outcome));
  return (outcome as { body: string }).body;
}

describe('the token from a header or a cookie (TokenFile)', () => {
  const temp = tempDir();
  let a: TestServer;
  let b: TestServer;
  let c: TestServer;
  let proxy: RunningProxy;

  before(async () => {
    [a, b, c] = await Promise.all([startNamedServer('server A'), startNamedServer('server B'), startNamedServer('server C')]);
    const file = path.join(temp.dir, 'tokens.cfg');
    fs.writeFileSync(file, `alpha: 127.0.0.1:${a.port}\nbeta: 127.0.0.1:${b.port}\ngamma/ü x: 127.0.0.1:${c.port}\n`);
    proxy = await startProxy([
      '--token-plugin',
      'TokenFile',
      '--token-source',
      file,
      '--token-header',
      'X-Console-Token',
      '--token-cookie',
      'token',
      '127.0.0.1:0',
    ]);
  });
  after(async () => {
    await proxy?.stop();
    await Promise.all([a?.close(), b?.close(), c?.close()]);
    temp.remove();
  });

  test('the listening line names the places, in their order', async () => {
    const listening = await proxy.waitForEvent((e) => e.event === 'listening');
    assert.match(String(listening.msg), /token from \?token= in the URL, then the x-console-token header, then the token cookie/);
  });

  test('a cookie alone, among others, percent-decoded or quoted', async () => {
    assert.deepEqual(await attempt(`${proxy.url}/websockify`, { Cookie: 'lang=en; token=alpha; theme=dark' }), {
      status: 101,
      said: 'server A',
    });
    assert.deepEqual(await attempt(`${proxy.url}/`, { Cookie: `token=${encodeURIComponent('gamma/ü x')}` }), {
      status: 101,
      said: 'server C',
    });
    assert.deepEqual(await attempt(`${proxy.url}/`, { Cookie: 'token="beta"' }), { status: 101, said: 'server B' });
  });

  test('a header alone, any case of its name', async () => {
    assert.deepEqual(await attempt(`${proxy.url}/`, { 'x-console-token': 'beta' }), { status: 101, said: 'server B' });
    assert.deepEqual(await attempt(`${proxy.url}/`, { 'X-CONSOLE-TOKEN': 'alpha' }), { status: 101, said: 'server A' });
  });

  test('?token= wins over the header, the header over the cookie', async () => {
    const both = { 'X-Console-Token': 'beta', Cookie: `token=${encodeURIComponent('gamma/ü x')}` };
    assert.deepEqual(await attempt(`${proxy.url}/?token=alpha`, both), { status: 101, said: 'server A' });
    assert.deepEqual(await attempt(`${proxy.url}/`, both), { status: 101, said: 'server B' });
    // An empty ?token= or header is no token: the next place is read.
    assert.deepEqual(await attempt(`${proxy.url}/?token=`, { 'X-Console-Token': '', Cookie: 'token=alpha' }), {
      status: 101,
      said: 'server A',
    });
  });

  test('an unknown token from a cookie is 404 like any other; no token anywhere says where it looked', async () => {
    assert.match(refusedWith(await attempt(`${proxy.url}/`, { Cookie: 'token=nope' }), 404), /unknown token/);
    const body = refusedWith(await attempt(`${proxy.url}/`, { Cookie: 'session=1' }), 404);
    assert.match(body, /missing token \(looked in \?token= in the URL, then the x-console-token header, then the token cookie\)/);
  });

  test('with --workers 2 each worker reads the cookie (the options reach the workers)', async () => {
    const workers = await startTokenFileProxy(path.join(temp.dir, 'workers.cfg'), { alpha: a.port }, [
      '--workers',
      '2',
      '--token-cookie',
      'token',
    ]);
    try {
      for (let i = 0; i < 6; i++)
        assert.deepEqual(await attempt(`${workers.url}/`, { Cookie: 'token=alpha' }), { status: 101, said: 'server A' });
    } finally {
      await workers.stop();
    }
  });

  test('a malformed token cookie or a repeated token header: 400, logged; the proxy carries on', async () => {
    assert.match(refusedWith(await attempt(`${proxy.url}/`, { Cookie: 'token=%E0%A4%A' }), 400), /malformed percent-escape/);
    assert.match(refusedWith(await attempt(`${proxy.url}/`, { Cookie: 'token=a%0Ab' }), 400), /control character/);
    // ws sends an array as repeated header lines.
    const twice = await attempt(`${proxy.url}/`, { 'X-Console-Token': ['alpha', 'beta'] as unknown as string });
    assert.match(refusedWith(twice, 400), /more than one x-console-token header/);
    await proxy.waitForEvent((e) => e.event === 'refused' && e.status === 400);
    assert.deepEqual(await attempt(`${proxy.url}/`, { Cookie: 'token=alpha' }), { status: 101, said: 'server A' });
  });
});

describe('tokenHeader and tokenCookie in the library (createUpgradeHandler)', () => {
  test("a user's plugin object gets the token from the cookie; tokenCache is refused for it", async () => {
    const a = await startNamedServer('server A');
    const plugin: TokenPlugin = {
      lookup: async (token) => (token === 'alpha' ? { kind: 'tcp', host: '127.0.0.1', port: a.port } : undefined),
    };
    const logger = pino({ level: 'silent' });
    await assert.rejects(
      createUpgradeHandler({ tokenPlugin: plugin, tokenCache: 5, logger }),
      (err: Error) => err instanceof UsageError && /a plugin of your own may choose by the client/.test(err.message),
    );
    const bridge = await createUpgradeHandler({ tokenPlugin: plugin, tokenCookie: 'console', tokenHeader: 'X-Token', logger });
    const server = http.createServer();
    bridge.attach(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const url = `ws://127.0.0.1:${(server.address() as { port: number }).port}/`;
      assert.deepEqual(await attempt(url, { Cookie: 'console=alpha' }), { status: 101, said: 'server A' });
      assert.deepEqual(await attempt(url, { 'X-Token': 'alpha', Cookie: 'console=nope' }), { status: 101, said: 'server A' });
      assert.equal((await attempt(url, { Cookie: 'token=alpha' })).status, 404);
    } finally {
      await bridge.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await a.close();
    }
  });
});

describe('--token-header and --token-cookie usage errors', () => {
  const cases: Array<[string[], RegExp]> = [
    [['--token-cookie', 'token', '127.0.0.1:0', '127.0.0.1:1'], /--token-cookie needs --token-plugin/],
    [['--token-header', 'X-T', '127.0.0.1:0', '127.0.0.1:1'], /--token-header needs --token-plugin/],
    [['--token-plugin', 'TokenFile', '--token-source', '/dev/null', '--token-cookie', 'to ken', '127.0.0.1:0'], /not a valid name/],
    [['--token-plugin', 'TokenFile', '--token-source', '/dev/null', '--token-header', 'X:T', '127.0.0.1:0'], /not a valid name/],
    [['--token-plugin', 'TokenFile', '--token-source', '/dev/null', '--token-header', 'Host', '127.0.0.1:0'], /use --host-token/],
    [['--token-plugin', 'TokenFile', '--token-source', '/dev/null', '--token-header', 'cookie', '127.0.0.1:0'], /use --token-cookie/],
    [
      ['--token-plugin', 'TokenFile', '--token-source', '/dev/null', '--host-token', '--token-cookie', 'token', '127.0.0.1:0'],
      /--token-cookie and --host-token contradict/,
    ],
  ];
  for (const [args, message] of cases) {
    test(args.join(' '), async () => {
      const { code, stderr } = await runCli(args);
      assert.equal(code, 2, stderr);
      assert.match(stderr, message);
    });
  }
});
