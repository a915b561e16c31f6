// Finding the wrapped program's moved socket in the kernel's tables, and picking its port.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import { freeLoopbackPort, loopbackListener } from '../../src/wrap/loopback.js';

/** Listens on host:port (0: any port) and returns the server and its port. */
async function listen(host: string, port = 0, ipv6Only = false): Promise<{ server: net.Server; port: number }> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, ipv6Only }, resolve);
  });
  return { server, port: (server.address() as net.AddressInfo).port };
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

describe('loopbackListener', () => {
  test('finds a listener on 127.0.0.1, and nothing once it is closed', async () => {
    const { server, port } = await listen('127.0.0.1');
    try {
      assert.equal(loopbackListener(port), '127.0.0.1');
    } finally {
      await close(server);
    }
    assert.equal(loopbackListener(port), undefined);
  });

  test('finds a listener on ::1', async () => {
    const { server, port } = await listen('::1');
    try {
      assert.equal(loopbackListener(port), '::1');
    } finally {
      await close(server);
    }
  });

  test('an IPv6 socket bound to ::ffff:127.0.0.1 takes IPv4 connections', async () => {
    const { server, port } = await listen('::ffff:127.0.0.1');
    try {
      assert.equal(loopbackListener(port), '127.0.0.1');
    } finally {
      await close(server);
    }
  });

  test('a listener on another address, or a connected socket, is not the moved socket', async () => {
    const { server, port } = await listen('0.0.0.0');
    const client = net.connect(port, '127.0.0.1');
    try {
      await new Promise((resolve) => client.once('connect', resolve));
      assert.equal(loopbackListener(port), undefined);
      // The client's own port is in the table too, but not listening.
      assert.equal(loopbackListener(client.localPort!), undefined);
    } finally {
      client.destroy();
      await close(server);
    }
  });
});

describe('freeLoopbackPort', () => {
  test('returns a port free on both 127.0.0.1 and ::1', async () => {
    const port = await freeLoopbackPort();
    assert.ok(port > 0 && port < 65536);
    const v4 = await listen('127.0.0.1', port);
    const v6 = await listen('::1', port, true);
    await Promise.all([close(v4.server), close(v6.server)]);
  });
});
