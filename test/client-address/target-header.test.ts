import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NetAddress } from '../../src/client-address/origin.js';
import { parseProxyHeader } from '../../src/client-address/proxy-protocol.js';
import { targetProxyHeader } from '../../src/client-address/target-header.js';

const at = (address: string | undefined, port?: number): NetAddress => ({ address, port });

/** The header sent for a client and the address it connected to, as a target parses it. */
function sent(client: NetAddress, destination: NetAddress) {
  const parsed = parseProxyHeader(targetProxyHeader({ client, peer: client, destination }));
  assert.equal(parsed.kind, 'header');
  return parsed.kind === 'header' ? parsed.header : undefined;
}

test('the client and where it connected, in one family: IPv4, IPv6, or a mixed pair as IPv6', () => {
  assert.deepEqual(sent(at('203.0.113.7', 1), at('127.0.0.1', 2))?.addresses, {
    family: 4,
    source: { address: '203.0.113.7', port: 1 },
    destination: { address: '127.0.0.1', port: 2 },
  });
  assert.deepEqual(sent(at('fe80::1%eth0', 1), at('203.0.113.1', 2))?.addresses, {
    family: 6,
    source: { address: 'fe80::1', port: 1 },
    destination: { address: '::ffff:203.0.113.1', port: 2 },
  });
});

test('a client known without where it connected (a Unix socket listener) gets the unspecified destination', () => {
  assert.deepEqual(sent(at('203.0.113.7'), at(undefined))?.addresses, {
    family: 4,
    source: { address: '203.0.113.7', port: 0 },
    destination: { address: '0.0.0.0', port: 0 },
  });
  assert.deepEqual(sent(at('2001:db8::1', 5), at(undefined))?.addresses?.family, 6);
});

test('a client without an IP address is relayed as PROXY with AF_UNSPEC, never LOCAL', () => {
  assert.deepEqual(sent(at(undefined), at(undefined)), { version: 2, command: 'proxy' });
  assert.deepEqual(sent(at(undefined), at('127.0.0.1', 80)), { version: 2, command: 'proxy' });
});
