// UnixDomainSocketDirectory to real Unix socket servers, a user's plugin module loaded from a path, and the
// command line's token options: usage errors and start-up errors.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { createPki } from '../helpers/pki.js';
import { runCli, startProxy } from '../helpers/proxy.js';
import type { TestServer } from '../helpers/targets.js';
import { attempt, startNamedServer, startUnixNamedServer, tempDir } from './support.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/custom-plugin.js', import.meta.url));
const temp = tempDir();
let a: TestServer;
let b: TestServer;

before(async () => {
  [a, b] = await Promise.all([startNamedServer('server A'), startNamedServer('server B')]);
});
after(async () => {
  await Promise.all([a.close(), b.close()]);
  temp.remove();
});

describe('UnixDomainSocketDirectory', () => {
  const servers: net.Server[] = [];
  after(async () => {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  });

  test('a token names a socket in the directory; escapes, non-sockets and absent names are unknown', async () => {
    const dir = path.join(temp.dir, 'sockets');
    fs.mkdirSync(path.join(dir, 'nested'), { recursive: true });
    // A sibling directory whose name starts like the socket directory's: a prefix check would let it in.
    fs.mkdirSync(path.join(temp.dir, 'sockets-evil'));
    servers.push(await startUnixNamedServer(path.join(dir, 'vm1'), 'unix vm1'));
    servers.push(await startUnixNamedServer(path.join(dir, 'nested', 'vm2'), 'unix vm2'));
    servers.push(await startUnixNamedServer(path.join(temp.dir, 'sockets-evil', 'vm3'), 'unix vm3'));
    fs.writeFileSync(path.join(dir, 'plain-file'), 'not a socket');
    const proxy = await startProxy(['--token-plugin', 'UnixDomainSocketDirectory', '--token-source', dir, '127.0.0.1:0']);
    try {
      assert.deepEqual(await attempt(`${proxy.url}/?token=vm1`), { status: 101, said: 'unix vm1' });
      assert.deepEqual(await attempt(`${proxy.url}/?token=${encodeURIComponent('nested/vm2')}`), { status: 101, said: 'unix vm2' });
      for (const token of ['../sockets-evil/vm3', `${temp.dir}/sockets-evil/vm3`, '..', 'plain-file', 'absent']) {
        assert.equal((await attempt(`${proxy.url}/?token=${encodeURIComponent(token)}`)).status, 404, token);
      }
      await proxy.waitForEvent((e) => e.event === 'token-path-escape');
    } finally {
      await proxy.stop();
    }
  });

  test("a token file entry 'unix_socket:/path' (Python's spelling) reaches a Unix socket", async () => {
    const socket = path.join(temp.dir, 'vm4.sock');
    servers.push(await startUnixNamedServer(socket, 'unix vm4'));
    const file = path.join(temp.dir, 'unix-tokens');
    fs.writeFileSync(file, `vm4: unix_socket:${socket}\n`);
    const proxy = await startProxy(['--token-plugin', 'TokenFile', '--token-source', file, '127.0.0.1:0']);
    try {
      assert.deepEqual(await attempt(`${proxy.url}/?token=vm4`), { status: 101, said: 'unix vm4' });
    } finally {
      await proxy.stop();
    }
  });
});

describe('a custom plugin module loaded from a path', () => {
  test('its factory gets the source and a logger; its targets are used; its failures answer 503; close() on stop', async () => {
    // Relative to the proxy's working directory, as a user would type it.
    const relative = path.relative(process.cwd(), FIXTURE);
    const source = `alpha=127.0.0.1:${a.port},beta=127.0.0.1:${b.port}`;
    const proxy = await startProxy(['--token-plugin', `./${relative}`, '--token-source', source, '127.0.0.1:0']);
    try {
      assert.equal((await proxy.waitForEvent((e) => e.event === 'custom-plugin-ready')).tokens, 2);
      assert.deepEqual(await attempt(`${proxy.url}/?token=alpha`), { status: 101, said: 'server A' });
      assert.deepEqual(await attempt(`${proxy.url}/?token=beta`), { status: 101, said: 'server B' });
      assert.equal((await attempt(`${proxy.url}/?token=gamma`)).status, 404);
      const exploded = await attempt(`${proxy.url}/?token=explode`);
      assert.equal(exploded.status, 503);
      assert.match((exploded as { body: string }).body, /the backend exploded/);
      const nonsense = await attempt(`${proxy.url}/?token=nonsense`);
      assert.equal(nonsense.status, 503);
      assert.match((nonsense as { body: string }).body, /not \{kind: 'tcp', host, port\}/);
      assert.deepEqual(await attempt(`${proxy.url}/?token=alpha`), { status: 101, said: 'server A' });
    } finally {
      await proxy.stop();
    }
    assert.ok(
      proxy.events().some((e) => e.event === 'custom-plugin-closed'),
      'close() was not called on stop',
    );
  });

  test('a module that cannot be loaded, lacks a factory, or whose factory throws stops the start (exit 1)', async () => {
    const missing = await runCli(['--token-plugin', path.join(temp.dir, 'absent.js'), '127.0.0.1:0']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /cannot load token plugin module .*absent\.js/);
    const noFactory = await runCli(['--token-plugin', fileURLToPath(new URL('./support.js', import.meta.url)), '127.0.0.1:0']);
    assert.equal(noFactory.code, 1);
    assert.match(noFactory.stderr, /default export must be a function/);
    const throws = await runCli(['--token-plugin', FIXTURE, '--token-source', 'no equals sign', '127.0.0.1:0']);
    assert.equal(throws.code, 1);
    assert.match(throws.stderr, /malformed entry 'no equals sign'/);
  });
});

describe('--ssl-target with a token plugin', () => {
  test('TLS, verified against --ssl-target-ca, to each target a token names', { timeout: 30000 }, async () => {
    const pki = createPki();
    const leaf = pki.issue('token-target', pki.ca);
    const server = tls.createServer({ cert: fs.readFileSync(leaf.cert), key: fs.readFileSync(leaf.key) }, (socket) => {
      socket.on('error', () => undefined);
      socket.end('tls target');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const file = path.join(temp.dir, 'tls-tokens');
    fs.writeFileSync(file, `secure: 127.0.0.1:${(server.address() as net.AddressInfo).port}\n`);
    const proxy = await startProxy([
      '--token-plugin',
      'TokenFile',
      '--token-source',
      file,
      '--ssl-target',
      '--ssl-target-ca',
      pki.ca.cert,
      '127.0.0.1:0',
    ]);
    try {
      assert.deepEqual(await attempt(`${proxy.url}/?token=secure`), { status: 101, said: 'tls target' });
    } finally {
      await proxy.stop();
      await new Promise((resolve) => server.close(resolve));
      pki.remove();
    }
  });
});

describe('token options on the command line', () => {
  const usage: Array<{ args: string[]; problem: RegExp }> = [
    { args: ['--token-source', 'x', '0', '127.0.0.1:1'], problem: /--token-source needs --token-plugin/ },
    { args: ['--host-token', '0', '127.0.0.1:1'], problem: /--host-token needs --token-plugin/ },
    {
      args: ['--token-plugin', 'TokenFile', '--token-source', 'f', '0', '127.0.0.1:1'],
      problem: /token plugin .* chooses each connection's target, so the fixed target '127\.0\.0\.1:1' cannot be given too/,
    },
    {
      args: ['--token-plugin', 'TokenFile', '--token-source', 'f', '--unix-target', '/tmp/s', '0'],
      problem: /--unix-target cannot be used with --token-plugin/,
    },
    { args: ['--target-config', 'f', '0', '127.0.0.1:1'], problem: /--target-config\) chooses each connection's target/ },
    { args: ['--target-config', 'f', '--token-plugin', 'TokenFile', '0'], problem: /old spelling of --token-plugin TokenFile/ },
    { args: ['--token-plugin', 'TokenFiles', '0'], problem: /unknown plugin 'TokenFiles' \(TokenFile, ReadOnlyTokenFile/ },
    {
      args: ['--token-plugin', 'TokenFile', '--token-source', 'f', '0', '--', 'true'],
      problem: /-- PROGRAM cannot be used with --token-plugin/,
    },
  ];
  for (const { args, problem } of usage) {
    test(`usage error (exit 2): ${args.join(' ')}`, async () => {
      const result = await runCli(args);
      assert.equal(result.code, 2, result.stderr);
      assert.match(result.stderr, problem);
      assert.match(result.stderr, /^usage: websockify/m);
    });
  }

  test('a bad source stops the start (exit 1) with nothing listening', async () => {
    const file = await runCli(['--token-plugin', 'TokenFile', '--token-source', path.join(temp.dir, 'absent.cfg'), '127.0.0.1:0']);
    assert.equal(file.code, 1);
    assert.match(file.stderr, /TokenFile: cannot read token file .*absent\.cfg: ENOENT/);
    assert.doesNotMatch(file.stderr, /listening/);
    const noSource = await runCli(['--token-plugin', 'TokenFileName', '127.0.0.1:0']);
    assert.equal(noSource.code, 1);
    assert.match(noSource.stderr, /TokenFileName needs --token-source DIR/);
    const notDir = await runCli(['--token-plugin', 'UnixDomainSocketDirectory', '--token-source', FIXTURE, '127.0.0.1:0']);
    assert.equal(notDir.code, 1);
    assert.match(notDir.stderr, /is not a directory/);
    const redis = await runCli(['--token-plugin', 'TokenRedis', '--token-source', 'localhost:port', '127.0.0.1:0']);
    assert.equal(redis.code, 1);
    assert.match(redis.stderr, /invalid port 'port'/);
  });

  test("Python's full class name websockify.token_plugins.TokenFile is accepted", async () => {
    const file = path.join(temp.dir, 'python-name.cfg');
    fs.writeFileSync(file, `alpha: 127.0.0.1:${a.port}\n`);
    const proxy = await startProxy(['--token-plugin', 'websockify.token_plugins.TokenFile', '--token-source', file, '127.0.0.1:0']);
    try {
      assert.deepEqual(await attempt(`${proxy.url}/?token=alpha`), { status: 101, said: 'server A' });
    } finally {
      await proxy.stop();
    }
  });
});
