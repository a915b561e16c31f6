// --token-cache through the real CLI: TokenRedis against a real redis-server (a kept target served while
// Redis is stopped, unknown tokens kept, source-down errors never kept, expiry, the entries bound in
// least-recently-used order, the token from a cookie), the token API against a real HTTP service (how
// often it is asked), JWTTokenApi (a target kept no longer than its token's exp, a refusal no longer
// than its nbf), and the flags' usage errors.
import assert from 'node:assert/strict';
import { createSecretKey, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import { runCli } from '../helpers/proxy.js';
import { unusedPort } from '../helpers/targets.js';
import { attempt, eventually, type Outcome, REDIS_SERVER, RedisServer, tokenFixture } from './support.js';

const { temp, proxies, targets } = tokenFixture();

const reaches = (name: string): Outcome => ({ status: 101, said: name });

describe('--token-cache with TokenRedis (a real redis-server)', () => {
  let redis: RedisServer;
  let client: Redis;

  before(async () => {
    if (!fs.existsSync(REDIS_SERVER)) throw new Error(`${REDIS_SERVER} is missing: apt-get install redis-server`);
    redis = new RedisServer(await unusedPort(), temp.dir);
  });
  after(async () => {
    await redis?.stop();
  });

  /** A fresh, empty Redis (a restarted server has no keys), and a client of it. */
  async function freshRedis(): Promise<void> {
    await redis.stop();
    await redis.start();
    client = new Redis({ host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: 1 });
    client.on('error', () => undefined);
  }
  afterEach(() => client?.disconnect());

  const startCaching = (...args: string[]) =>
    proxies.start(['--token-plugin', 'TokenRedis', '--token-source', `127.0.0.1:${redis.port}`, ...args, '127.0.0.1:0']);

  test('a kept target (its token in a cookie or a header) is served while Redis is stopped; a source-down error is never kept', async () => {
    await freshRedis();
    const proxy = await startCaching('--token-cache', '60', '--token-cookie', 'token', '--token-header', 'X-Token');
    await client.set('alpha', `127.0.0.1:${targets.a.port}`);
    await client.set('gamma', `127.0.0.1:${targets.b.port}`);
    assert.deepEqual(await attempt(`${proxy.url}/`, { Cookie: 'session=x; token=alpha' }), reaches('server A'));
    assert.deepEqual(await attempt(`${proxy.url}/`, { 'X-Token': 'gamma', Cookie: 'token=alpha' }), reaches('server B'));
    await redis.stop();
    await proxy.waitForEvent((e) => e.event === 'token-source-down');
    assert.deepEqual(await attempt(`${proxy.url}/`, { Cookie: 'token=alpha' }), reaches('server A'));
    assert.deepEqual(await attempt(`${proxy.url}/?token=alpha`), reaches('server A'));
    assert.deepEqual(await attempt(`${proxy.url}/`, { 'X-Token': 'gamma' }), reaches('server B'));
    // Never asked before: Redis must answer, and cannot.
    assert.equal((await attempt(`${proxy.url}/?token=beta`)).status, 503);
    await redis.start();
    const restarted = new Redis({ host: '127.0.0.1', port: redis.port });
    await restarted.set('beta', `127.0.0.1:${targets.b.port}`);
    restarted.disconnect();
    // The 503 was not kept for 60 s: Redis is asked again as soon as the proxy has reconnected.
    assert.deepEqual(await eventually(`${proxy.url}/?token=beta`, (outcome) => outcome.status !== 503), reaches('server B'));
  });

  test('an unknown token is kept (404 after it appears in Redis); a malformed value is not kept', async () => {
    await freshRedis();
    const proxy = await startCaching('--token-cache', '60');
    assert.equal((await attempt(`${proxy.url}/?token=ghost`)).status, 404);
    await client.set('ghost', `127.0.0.1:${targets.b.port}`);
    assert.equal((await attempt(`${proxy.url}/?token=ghost`)).status, 404);
    await client.set('broken', '{"host": 1');
    assert.equal((await attempt(`${proxy.url}/?token=broken`)).status, 503);
    await client.set('broken', `127.0.0.1:${targets.a.port}`);
    assert.deepEqual(await attempt(`${proxy.url}/?token=broken`), reaches('server A'));
  });

  test('after SECONDS the source is asked again, for kept targets and unknown tokens alike', async () => {
    await freshRedis();
    const proxy = await startCaching('--token-cache', '1');
    await client.set('alpha', `127.0.0.1:${targets.a.port}`);
    assert.deepEqual(await attempt(`${proxy.url}/?token=alpha`), reaches('server A'));
    assert.equal((await attempt(`${proxy.url}/?token=ghost`)).status, 404);
    await client.set('alpha', `127.0.0.1:${targets.b.port}`);
    await client.set('ghost', `127.0.0.1:${targets.a.port}`);
    await sleep(1500);
    assert.deepEqual(await attempt(`${proxy.url}/?token=alpha`), reaches('server B'));
    assert.deepEqual(await attempt(`${proxy.url}/?token=ghost`), reaches('server A'));
  });

  test('--token-cache-entries bounds the answers kept, the least recently used dropped first', async () => {
    await freshRedis();
    const proxy = await startCaching('--token-cache', '60', '--token-cache-entries', '3');
    for (const token of ['t1', 't2', 't3', 't4']) await client.set(token, `127.0.0.1:${targets.a.port}`);
    for (const token of ['t1', 't2', 't3', 't1', 't4'])
      assert.deepEqual(await attempt(`${proxy.url}/?token=${token}`), reaches('server A'));
    await redis.stop();
    await proxy.waitForEvent((e) => e.event === 'token-source-down');
    // t2 was the least recently used when t4 came: dropped, so only Redis could answer for it.
    assert.equal((await attempt(`${proxy.url}/?token=t2`)).status, 503);
    for (const token of ['t1', 't3', 't4']) assert.deepEqual(await attempt(`${proxy.url}/?token=${token}`), reaches('server A'));
  });
});

describe('--token-cache with JSONTokenApi (a real HTTP token service)', () => {
  test('a target and an unknown token are asked for once, even by a burst; a failing service is asked each time', async () => {
    const asked: string[] = [];
    const held: http.ServerResponse[] = [];
    const api = http.createServer((req, res) => {
      asked.push(req.url ?? '');
      // Answered once four questions wait, or after a second: asked four times only if nothing coalesces them.
      if (req.url === '/held') {
        held.push(res);
        const answer = (): void => {
          for (const waiting of held.splice(0)) waiting.end(JSON.stringify({ host: '127.0.0.1', port: targets.b.port }));
        };
        if (held.length === 4) answer();
        else setTimeout(answer, 1000);
        return;
      }
      if (req.url === '/alpha') return void res.end(JSON.stringify({ host: '127.0.0.1', port: targets.a.port }));
      if (req.url === '/boom') return void res.writeHead(500).end();
      res.writeHead(404).end();
    });
    api.listen(0, '127.0.0.1');
    await new Promise((resolve) => api.once('listening', resolve));
    try {
      const { port } = api.address() as { port: number };
      const proxy = await proxies.start([
        '--token-plugin',
        'JSONTokenApi',
        '--token-source',
        `http://127.0.0.1:${port}/%s`,
        '--token-cache',
        '60',
        '127.0.0.1:0',
      ]);
      for (let i = 0; i < 3; i++) {
        assert.deepEqual(await attempt(`${proxy.url}/?token=alpha`), reaches('server A'));
        assert.equal((await attempt(`${proxy.url}/?token=nobody`)).status, 404);
        assert.equal((await attempt(`${proxy.url}/?token=boom`)).status, 503);
      }
      assert.deepEqual(asked.sort(), ['/alpha', '/boom', '/boom', '/boom', '/nobody']);
      // Four handshakes at once with a token not yet kept: one question to the service.
      const burst = await Promise.all([1, 2, 3, 4].map(() => attempt(`${proxy.url}/?token=held`)));
      for (const outcome of burst) assert.deepEqual(outcome, reaches('server B'));
      assert.equal(asked.filter((url) => url === '/held').length, 1);
    } finally {
      api.close();
    }
  });
});

describe('--token-cache with JWTTokenApi', () => {
  const secret = createSecretKey(randomBytes(32));
  const nowSeconds = (): number => Math.floor(Date.now() / 1000);
  const sign = (claims: Record<string, unknown>): Promise<string> => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(secret);
  /** Waits until the clock has passed `seconds` (a JWT time) by a little. */
  const passed = (seconds: number): Promise<void> => sleep(Math.max(0, seconds * 1000 - Date.now()) + 200);

  test("a token's target is kept no longer than its exp; a refusal as not valid yet no longer than its nbf", async () => {
    const keyFile = path.join(temp.dir, 'jwt.key');
    fs.writeFileSync(keyFile, secret.export().toString('base64url'));
    const proxy = await proxies.start(['--token-plugin', 'JWTTokenApi', '--token-source', keyFile, '--token-cache', '60', '127.0.0.1:0']);
    const exp = nowSeconds() + 2;
    const expiring = await sign({ host: '127.0.0.1', port: targets.a.port, exp });
    const nbf = nowSeconds() + 2;
    const early = await sign({ host: '127.0.0.1', port: targets.b.port, nbf });
    assert.deepEqual(await attempt(`${proxy.url}/?token=${expiring}`), reaches('server A'));
    const refused = await attempt(`${proxy.url}/?token=${early}`);
    assert.equal(refused.status, 403);
    assert.match((refused as { body: string }).body, /not valid yet/);
    // A refusal is kept too: the same answer again, the plugin not asked (no second 'token-rejected' line).
    assert.equal((await attempt(`${proxy.url}/?token=${early}`)).status, 403);
    assert.equal(proxy.events().filter((e) => e.event === 'token-rejected').length, 1);
    await passed(Math.max(exp, nbf));
    const expired = await attempt(`${proxy.url}/?token=${expiring}`);
    assert.equal(expired.status, 403);
    assert.match((expired as { body: string }).body, /token expired/);
    assert.deepEqual(await attempt(`${proxy.url}/?token=${early}`), reaches('server B'));
  });
});

describe('--token-cache usage errors', () => {
  const cases: Array<[string[], RegExp]> = [
    [
      ['--token-plugin', 'TokenFile', '--token-source', '/dev/null', '--token-cache', '5', '127.0.0.1:0'],
      /--token-cache works with TokenRedis.*TokenFile reads local files/,
    ],
    [['--token-plugin', './mine.js', '--token-cache', '5', '127.0.0.1:0'], /a plugin of your own may choose by the client/],
    [['--token-cache', '5', '127.0.0.1:0', '127.0.0.1:1'], /--token-cache needs --token-plugin/],
    [
      ['--token-plugin', 'TokenRedis', '--token-source', 'r', '--token-cache-entries', '5', '127.0.0.1:0'],
      /--token-cache-entries needs --token-cache/,
    ],
    [
      ['--token-plugin', 'TokenRedis', '--token-source', 'r', '--token-cache', '5', '--token-cache-entries', '0', '127.0.0.1:0'],
      /expected a positive whole number/,
    ],
    [['--token-plugin', 'TokenRedis', '--token-source', 'r', '--token-cache', 'soon', '127.0.0.1:0'], /expected a number of seconds/],
  ];
  for (const [args, message] of cases) {
    test(args.join(' '), async () => {
      const { code, stderr } = await runCli(args);
      assert.equal(code, 2, stderr);
      assert.match(stderr, message);
    });
  }
});
