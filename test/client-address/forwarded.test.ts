import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { forwardedHops, xForwardedForHops } from '../../src/client-address/forwarded.js';
import { clientFromHops } from '../../src/client-address/resolve.js';
import { TrustedProxies } from '../../src/client-address/trusted-proxies.js';
import { UsageError } from '../../src/errors.js';
import { propertyRuns } from '../helpers/fast-check.js';

const at = (address: string, port?: number) => ({ address, port });

describe('TrustedProxies', () => {
  test('addresses and CIDR ranges of both families; IPv4-mapped IPv6 peers match IPv4 ranges', () => {
    const trusted = new TrustedProxies(['10.0.0.0/8', '192.0.2.7', 'fd00::/8', '2001:db8::1']);
    for (const yes of ['10.1.2.3', '::ffff:10.1.2.3', '192.0.2.7', 'fd12::1', '2001:db8::1', 'fd00::1%eth0'])
      assert.ok(trusted.has(yes), yes);
    for (const no of ['11.0.0.1', '192.0.2.8', '::ffff:192.0.2.8', 'fe80::1', '2001:db8::2', 'unknown', ''])
      assert.ok(!trusted.has(no), no);
    assert.ok(!trusted.has(undefined), 'a Unix socket peer');
  });

  test('malformed ranges are usage errors naming the entry', () => {
    for (const bad of ['10.0.0.0/33', 'fd00::/129', '10.0.0.0/8/8', 'example.com', '10.0.0', 'fe80::1%eth0', '10.0.0.0/x', '']) {
      assert.throws(() => new TrustedProxies([bad]), UsageError, bad);
    }
    assert.throws(() => new TrustedProxies(['proxy.local']), /'proxy\.local' is not an IP address or CIDR range/);
  });
});

describe('X-Forwarded-For', () => {
  test('comma-separated addresses, with or without ports; anything else is a hop that cannot be read', () => {
    assert.deepEqual(xForwardedForHops('203.0.113.7, 10.0.0.2,2001:db8::1 , [2001:db8::2]:443, 198.51.100.1:80'), [
      at('203.0.113.7'),
      at('10.0.0.2'),
      at('2001:db8::1'),
      at('2001:db8::2', 443),
      at('198.51.100.1', 80),
    ]);
    assert.deepEqual(xForwardedForHops('unknown, , 1.2.3.4:99999, [1.2.3.4], ::ffff:10.0.0.1, evil.example'), [
      undefined,
      undefined,
      undefined,
      undefined,
      at('10.0.0.1'),
      undefined,
    ]);
  });
});

describe('Forwarded (RFC 7239)', () => {
  test("the RFC's examples: quoted IPv6 with a port, several elements, other parameters, any case", () => {
    assert.deepEqual(forwardedHops('for="_gazonk"'), [undefined]);
    assert.deepEqual(forwardedHops('For="[2001:db8:cafe::17]:4711"'), [at('2001:db8:cafe::17', 4711)]);
    assert.deepEqual(forwardedHops('for=192.0.2.60;proto=http;by=203.0.113.43'), [at('192.0.2.60')]);
    assert.deepEqual(forwardedHops('for=192.0.2.43, for=198.51.100.17'), [at('192.0.2.43'), at('198.51.100.17')]);
    assert.deepEqual(forwardedHops('for=unknown, for="192.0.2.43:_hidden"'), [undefined, at('192.0.2.43')]);
  });

  test('quoted strings may hold separators and escapes; broken ones, a missing or doubled for, are unreadable hops', () => {
    assert.deepEqual(forwardedHops('by="a,b;c";for="\\1\\92.0.2.1"'), [at('192.0.2.1')]);
    assert.deepEqual(forwardedHops('for="192.0.2.1'), [undefined]);
    assert.deepEqual(forwardedHops('for=192.0.2.1;for=192.0.2.2'), [undefined]);
    assert.deepEqual(forwardedHops('proto=https'), [undefined]);
    assert.deepEqual(forwardedHops('for'), [undefined]);
    assert.deepEqual(forwardedHops('for=1"92.0.2.1'), [undefined]);
    assert.deepEqual(forwardedHops('for="[2001:db8::1]:x"'), [undefined]);
  });

  test('arbitrary header text never throws', () => {
    const text = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc
        .array(fc.constantFrom('for', '=', '"', '\\', ',', ';', '[', ']', ':', '1.2.3.4', '::1', '_x', ' ', 'unknown'), { maxLength: 40 })
        .map((parts) => parts.join('')),
    );
    fc.assert(
      fc.property(text, (value) => {
        for (const hop of [...forwardedHops(value), ...xForwardedForHops(value)])
          assert.ok(hop === undefined || typeof hop.address === 'string');
      }),
      propertyRuns(),
    );
  });
});

describe('the real client: the rightmost address that is not a trusted proxy', () => {
  const trusted = new TrustedProxies(['10.0.0.0/8']);
  const peer = at('10.0.0.1', 5555);

  test('hops are taken from the right while the address before them is a trusted proxy', () => {
    assert.deepEqual(clientFromHops(peer, [at('203.0.113.7')], trusted), at('203.0.113.7'));
    // What the client wrote itself (the leftmost entries) is not believed.
    assert.deepEqual(clientFromHops(peer, [at('1.1.1.1'), at('203.0.113.7'), at('10.0.0.9')], trusted), at('203.0.113.7'));
    // Every hop a trusted proxy: the leftmost is as far as the chain goes.
    assert.deepEqual(clientFromHops(peer, [at('10.0.0.3'), at('10.0.0.2')], trusted), at('10.0.0.3'));
    assert.deepEqual(clientFromHops(peer, [], trusted), peer);
  });

  test('a hop that cannot be read ends the walk at the proxy that wrote it', () => {
    assert.deepEqual(clientFromHops(peer, [at('203.0.113.7'), undefined], trusted), peer);
    assert.deepEqual(clientFromHops(peer, [undefined, at('10.0.0.2')], trusted), at('10.0.0.2'));
  });

  test('an untrusted peer is the client, whatever the hops say', () => {
    assert.deepEqual(clientFromHops(at('198.51.100.1', 1), [at('203.0.113.7')], trusted), at('198.51.100.1', 1));
  });
});
