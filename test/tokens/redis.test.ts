// TokenRedis against a real redis-server started here on a free port: tokens added and removed while the
// proxy runs, values in both formats, a namespace, Redis stopped (503) and back (service resumes).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { parseRedisSource } from '../../src/tokens/redis.js';
import { type RunningProxy, startProxy } from '../helpers/proxy.js';
import { type TestServer, unusedPort } from '../helpers/targets.js';
import { attempt, eventually, REDIS_SERVER, RedisServer, startNamedServer, tempDir } from './support.js';

describe('TokenRedis source format', () => {
  test('host[:port[:db[:password[:namespace]]]], empty fields defaulted, quoted fields may hold colons', () => {
    assert.deepEqual(parseRedisSource('redis.example'), { host: 'redis.example', port: 6379, db: 0, password: undefined, prefix: '' });
    assert.deepEqual(parseRedisSource('r:6380:2:secret:app'), { host: 'r', port: 6380, db: 2, password: 'secret', prefix: 'app:' });
    assert.deepEqual(parseRedisSource('r:::pass'), { host: 'r', port: 6379, db: 0, password: 'pass', prefix: '' });
    assert.deepEqual(parseRedisSource('r::::"first:second"'), {
      host: 'r',
      port: 6379,
      db: 0,
      password: undefined,
      prefix: 'first:second:',
    });
    assert.deepEqual(parseRedisSource('"::1":6390:1:"pa:ss"'), { host: '::1', port: 6390, db: 1, password: 'pa:ss', prefix: '' });
    assert.throws(() => parseRedisSource('r:notaport'), /invalid port 'notaport'/);
    assert.throws(() => parseRedisSource('r:1:x'), /invalid database number 'x'/);
    assert.throws(() => parseRedisSource('r:1:2:3:4:5'), /too many fields/);
    assert.throws(() => parseRedisSource(':6379'), /no host/);
  });
});

describe('TokenRedis with a real redis-server', () => {
  const temp = tempDir();
  let redis: RedisServer;
  let client: Redis;
  let a: TestServer;
  let b: TestServer;
  let proxy: RunningProxy;

  before(async () => {
    if (!fs.existsSync(REDIS_SERVER)) throw new Error(`${REDIS_SERVER} is missing: apt-get install redis-server`);
    [a, b] = await Promise.all([startNamedServer('server A'), startNamedServer('server B')]);
    redis = new RedisServer(await unusedPort(), temp.dir);
    await redis.start();
    client = new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 100 });
    client.on('error', () => undefined);
    await client.connect();
    proxy = await startProxy(['--token-plugin', 'TokenRedis', '--token-source', `127.0.0.1:${redis.port}:0::vnc`, '127.0.0.1:0']);
  });
  after(async () => {
    client?.disconnect();
    await proxy?.stop();
    await redis?.stop();
    await Promise.all([a?.close(), b?.close()]);
    temp.remove();
  });

  test('tokens added and removed while the proxy runs, in both value formats, under the namespace', async () => {
    assert.equal((await attempt(`${proxy.url}/?token=alpha`)).status, 404);
    await client.set('vnc:alpha', `127.0.0.1:${a.port}`);
    await client.set('vnc:beta', JSON.stringify({ host: `127.0.0.1:${b.port}` }));
    await client.set('vnc:gamma', JSON.stringify({ host: '127.0.0.1', port: a.port }));
    // Outside the namespace: not a token.
    await client.set('delta', `127.0.0.1:${a.port}`);
    assert.deepEqual(await attempt(`${proxy.url}/?token=alpha`), { status: 101, said: 'server A' });
    assert.deepEqual(await attempt(`${proxy.url}/?token=beta`), { status: 101, said: 'server B' });
    assert.deepEqual(await attempt(`${proxy.url}/?token=gamma`), { status: 101, said: 'server A' });
    assert.equal((await attempt(`${proxy.url}/?token=delta`)).status, 404);
    await client.del('vnc:alpha');
    assert.equal((await attempt(`${proxy.url}/?token=alpha`)).status, 404);
  });

  test('a malformed value gets 503 and a log line naming the key', async () => {
    await client.set('vnc:broken', '{"host": 1');
    assert.equal((await attempt(`${proxy.url}/?token=broken`)).status, 503);
    await proxy.waitForEvent((e) => e.event === 'token-redis-error' && e.key === 'vnc:broken');
  });

  test('Redis stopped: 503 with a reason, promptly; Redis back: service resumes by itself', async () => {
    await redis.stop();
    const down = await attempt(`${proxy.url}/?token=beta`);
    assert.equal(down.status, 503);
    assert.match((down as { body: string }).body, /token source unavailable/);
    await proxy.waitForEvent((e) => e.event === 'refused' && e.status === 503);
    await proxy.waitForEvent((e) => e.event === 'token-source-down');
    // A second attempt while it is still down: 503 again, the proxy still up.
    assert.equal((await attempt(`${proxy.url}/?token=beta`)).status, 503);
    await redis.start();
    // A fresh server has no keys: 404 shows the proxy asks Redis again.
    await eventually(`${proxy.url}/?token=beta`, (outcome) => outcome.status === 404);
    await client.set('vnc:beta', `127.0.0.1:${b.port}`);
    assert.deepEqual(await attempt(`${proxy.url}/?token=beta`), { status: 101, said: 'server B' });
  });
});

describe('TokenRedis with Redis down at start-up', () => {
  test('the proxy starts, answers 503, and serves once Redis comes up', async () => {
    const temp = tempDir();
    const target = await startNamedServer('server A');
    const redis = new RedisServer(await unusedPort(), temp.dir);
    const proxy = await startProxy(['--token-plugin', 'TokenRedis', '--token-source', `127.0.0.1:${redis.port}`, '127.0.0.1:0']);
    let client: Redis | undefined;
    try {
      await proxy.waitForEvent((e) => e.event === 'token-source-down');
      assert.equal((await attempt(`${proxy.url}/?token=alpha`)).status, 503);
      await redis.start();
      client = new Redis({ host: '127.0.0.1', port: redis.port });
      await client.set('alpha', `127.0.0.1:${target.port}`);
      assert.deepEqual(await eventually(`${proxy.url}/?token=alpha`, (outcome) => outcome.status !== 503), {
        status: 101,
        said: 'server A',
      });
    } finally {
      client?.disconnect();
      await proxy.stop();
      await redis.stop();
      await target.close();
      temp.remove();
    }
  });
});
