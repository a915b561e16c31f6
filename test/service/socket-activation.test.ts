// systemd's socket activation, with Debian's systemd-socket-activate as the service manager: it listens,
// and on the first connection starts the proxy with the socket as fd 3 (LISTEN_FDS, LISTEN_PID); with no
// listen address given, the proxy serves that socket, TCP or Unix, alone or with --workers.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, test } from 'node:test';
import { UsageError } from '../../src/errors.js';
import { LISTEN_FDS_START, passedSocket, socketActivated } from '../../src/service/socket-activation.js';
import { cliFixture } from '../helpers/cli-fixture.js';
import { ProxyPool, type RunningProxy } from '../helpers/proxy.js';
import { unusedPort } from '../helpers/targets.js';
import { assertTools, skipWithout } from '../helpers/tools.js';
import { waitUntil } from '../helpers/wait.js';
import { echoed, openClient } from '../helpers/ws-client.js';

const ACTIVATE = '/usr/bin/systemd-socket-activate';

const pool = new ProxyPool();
const cli = cliFixture('socket-activation', { after: () => pool.stopAll() });

describe('the passed socket', () => {
  test('is ours only when LISTEN_PID is this process; taking it removes the variables', () => {
    const other = { LISTEN_PID: String(process.pid + 1), LISTEN_FDS: '1' };
    assert.equal(socketActivated(other), false);
    assert.equal(passedSocket(other), undefined);
    assert.deepEqual(other, { LISTEN_PID: String(process.pid + 1), LISTEN_FDS: '1' }, "another process's variables stay");
    const ours: NodeJS.ProcessEnv = { LISTEN_PID: String(process.pid), LISTEN_FDS: '1', LISTEN_FDNAMES: 'web', PATH: '/bin' };
    assert.equal(socketActivated(ours), true);
    assert.equal(passedSocket(ours), LISTEN_FDS_START);
    assert.deepEqual(ours, { PATH: '/bin' });
    assert.equal(passedSocket({ LISTEN_PID: String(process.pid), LISTEN_FDS: '0' }), undefined);
  });

  test('more than one passed socket is a usage error naming the fix', () => {
    assert.throws(
      () => passedSocket({ LISTEN_PID: String(process.pid), LISTEN_FDS: '2' }),
      (err) => err instanceof UsageError && /passed 2 sockets \(LISTEN_FDS\); websockify serves one/.test(err.message),
    );
  });
});

/**
 * Starts the proxy under systemd-socket-activate listening on `address`; the proxy starts with the
 * first connection, which `connect` makes.
 */
async function activated<T>(address: string, args: string[], connect: () => Promise<T>): Promise<{ proxy: RunningProxy; first: T }> {
  const proxy = await pool.start(args, { prefix: [ACTIVATE, '-l', address], noWait: true });
  await waitUntil('systemd-socket-activate to listen', () => proxy.stderr().includes(`Listening on ${address} as 3.`));
  const first = await connect();
  await proxy.waitForEvent((e) => e.event === 'listening' && e.worker === undefined);
  return { proxy, first };
}

describe('under systemd-socket-activate', { skip: skipWithout(ACTIVATE) }, () => {
  test('a TCP socket: the first connection (which started the proxy) and the next are proxied', async () => {
    assertTools(ACTIVATE);
    const port = await unusedPort();
    const url = `ws://127.0.0.1:${port}/`;
    const { proxy, first } = await activated(`127.0.0.1:${port}`, [`127.0.0.1:${cli.echoTarget.port}`], () => openClient(url));
    assert.equal(proxy.events().find((e) => e.event === 'listening')?.listen, `127.0.0.1:${port}`);
    assert.equal(await echoed(first, 'the connection that woke it'), 'the connection that woke it');
    first.close();
    const next = await openClient(url);
    assert.equal(await echoed(next, 'the next one'), 'the next one');
    next.close();
    assert.deepEqual(await pool.stop(proxy).then(() => proxy.exited), { code: 0, signal: null });
  });

  test('a Unix socket', async () => {
    assertTools(ACTIVATE);
    const socketPath = path.join(cli.scratch, 'activated.sock');
    const url = `ws+unix:${socketPath}:/`;
    const { proxy, first } = await activated(socketPath, [`127.0.0.1:${cli.echoTarget.port}`], () => openClient(url));
    assert.equal(proxy.events().find((e) => e.event === 'listening')?.listen, 'inherited Unix socket (fd 3)');
    assert.equal(await echoed(first, 'over a Unix socket'), 'over a Unix socket');
    first.close();
    await pool.stop(proxy);
  });

  test('with --workers 2 the workers serve the passed socket through the primary', async () => {
    assertTools(ACTIVATE);
    const port = await unusedPort();
    const url = `ws://127.0.0.1:${port}/`;
    const { proxy, first } = await activated(`127.0.0.1:${port}`, ['--workers', '2', `127.0.0.1:${cli.echoTarget.port}`], () =>
      openClient(url),
    );
    const listening = proxy.events().find((e) => e.event === 'listening' && e.worker === undefined);
    assert.equal(listening?.listen, `127.0.0.1:${port}`);
    assert.equal(listening?.balance, 'round-robin');
    assert.equal(await echoed(first, 'woke the workers'), 'woke the workers');
    first.close();
    // Round robin: the next sessions reach both workers.
    const before = proxy.events().filter((e) => e.event === 'open').length;
    for (let i = 0; i < 4; i++) {
      const ws = await openClient(url);
      assert.equal(await echoed(ws, `session ${i}`), `session ${i}`);
      ws.close();
    }
    const workers = new Set(
      proxy
        .events()
        .filter((e) => e.event === 'open')
        .slice(before)
        .map((e) => e.worker),
    );
    assert.equal(workers.size, 2);
    await pool.stop(proxy);
  });
});
