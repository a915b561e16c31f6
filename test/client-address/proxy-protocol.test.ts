import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  encodeProxyHeaderV2,
  isProxyHeaderStart,
  type ProxyHeader,
  type ProxyParse,
  parseProxyHeader,
  V1_MAX_LENGTH,
  V2_MAX_LENGTH,
} from '../../src/client-address/proxy-protocol.js';
import { propertyRuns } from '../helpers/fast-check.js';

const SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');

/** A v2 header written by hand (the test's own encoder): version/command, family/transport, then the body. */
function v2(versionCommand: number, familyTransport: number, body: Buffer | number[] = []): Buffer {
  const payload = Buffer.from(body);
  const length = Buffer.alloc(2);
  length.writeUInt16BE(payload.length);
  return Buffer.concat([SIGNATURE, Buffer.from([versionCommand, familyTransport]), length, payload]);
}

/** A parse's header and length, failing unless it is one. */
function header(parse: ProxyParse): { header: ProxyHeader; length: number } {
  assert.equal(parse.kind, 'header', JSON.stringify(parse));
  const { header, length } = parse as Extract<ProxyParse, { kind: 'header' }>;
  return { header, length };
}

function errorOf(parse: ProxyParse): string {
  assert.equal(parse.kind, 'error', JSON.stringify(parse));
  return (parse as { reason: string }).reason;
}

describe('version 1 (text)', () => {
  test('TCP4 and TCP6 give the addresses; the length is the line with its CRLF', () => {
    const line = 'PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n';
    assert.deepEqual(parseProxyHeader(Buffer.from(`${line}GET / HTTP/1.1\r\n`)), {
      kind: 'header',
      header: {
        version: 1,
        command: 'proxy',
        addresses: { family: 4, source: { address: '192.168.0.1', port: 56324 }, destination: { address: '192.168.0.11', port: 443 } },
      },
      length: line.length,
    });
    const six = header(parseProxyHeader(Buffer.from('PROXY TCP6 2001:db8:0:0::1 ::ffff:10.0.0.1 1 65535\r\n')));
    assert.deepEqual(six.header.addresses, {
      family: 6,
      source: { address: '2001:db8::1', port: 1 },
      destination: { address: '::ffff:10.0.0.1', port: 65535 },
    });
  });

  test("the specification's longest line (107 bytes) passes; UNKNOWN ignores what follows it", () => {
    const longest = `PROXY UNKNOWN ${'ffff:'.repeat(7)}ffff ${'ffff:'.repeat(7)}ffff 65535 65535\r\n`;
    assert.equal(longest.length, V1_MAX_LENGTH);
    assert.deepEqual(header(parseProxyHeader(Buffer.from(longest))), { header: { version: 1, command: 'proxy' }, length: 107 });
    assert.deepEqual(header(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n'))), { header: { version: 1, command: 'proxy' }, length: 15 });
  });

  test('needs more bytes until the CRLF, within 107 bytes; past them it is an error', () => {
    assert.deepEqual(parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4')), { kind: 'needs-more' });
    assert.deepEqual(parseProxyHeader(Buffer.from('PRO')), { kind: 'needs-more' });
    assert.match(errorOf(parseProxyHeader(Buffer.from(`PROXY UNKNOWN ${'x'.repeat(100)}`))), /longer than 107/);
  });

  test('malformed lines are errors', () => {
    for (const line of [
      'PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n', // no CR
      'PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n',
      'PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n',
      'PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n',
      'PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n',
      'PROXY TCP4 ::1 ::1 1 2\r\n',
      'PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n',
      'PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n',
      'PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n',
      'PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n',
      'PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n',
      'PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n',
      'PROXY \r\n',
    ]) {
      assert.equal(parseProxyHeader(Buffer.from(line)).kind, 'error', JSON.stringify(line));
    }
    assert.match(errorOf(parseProxyHeader(Buffer.from('proxy TCP4'))), /not a PROXY protocol header/);
  });
});

describe('version 2 (binary)', () => {
  test('PROXY over TCP4, TCP6 and Unix; TLVs after the addresses are skipped', () => {
    const inet = v2(0x21, 0x11, [192, 0, 2, 1, 198, 51, 100, 2, 0x12, 0x34, 0x01, 0xbb, 0x04, 0x00, 0x01, 0x00]);
    assert.deepEqual(parseProxyHeader(Buffer.concat([inet, Buffer.from('rest')])), {
      kind: 'header',
      header: {
        version: 2,
        command: 'proxy',
        addresses: { family: 4, source: { address: '192.0.2.1', port: 0x1234 }, destination: { address: '198.51.100.2', port: 443 } },
      },
      length: inet.length,
    });
    const six = Buffer.alloc(36);
    six.write('20010db8000000000000000000000001', 0, 'hex');
    six.writeUInt16BE(0xffff, 32);
    assert.deepEqual(header(parseProxyHeader(v2(0x21, 0x21, six))).header.addresses, {
      family: 6,
      source: { address: '2001:db8::1', port: 0xffff },
      destination: { address: '::', port: 0 },
    });
    const unix = Buffer.alloc(216);
    unix.write('/run/client.sock', 0);
    unix.write('/run/haproxy.sock', 108);
    assert.deepEqual(header(parseProxyHeader(v2(0x21, 0x31, unix))).header.addresses, {
      family: 'unix',
      source: '/run/client.sock',
      destination: '/run/haproxy.sock',
    });
  });

  test('LOCAL (health checks) and AF_UNSPEC carry no addresses, whatever bytes follow', () => {
    assert.deepEqual(header(parseProxyHeader(v2(0x20, 0x11, new Array(12).fill(7)))).header, { version: 2, command: 'local' });
    assert.deepEqual(header(parseProxyHeader(v2(0x20, 0x00))).header, { version: 2, command: 'local' });
    assert.deepEqual(header(parseProxyHeader(v2(0x21, 0x00, [1, 2, 3]))), { header: { version: 2, command: 'proxy' }, length: 19 });
  });

  test('needs the fixed 16 bytes, then the announced length; an oversized length is refused at once', () => {
    const whole = v2(0x21, 0x11, new Array(12).fill(1));
    for (let cut = 0; cut < whole.length; cut++)
      assert.deepEqual(parseProxyHeader(whole.subarray(0, cut)), { kind: 'needs-more' }, `cut ${cut}`);
    const huge = Buffer.concat([SIGNATURE, Buffer.from([0x21, 0x11, 0xff, 0xff])]);
    assert.match(errorOf(parseProxyHeader(huge)), new RegExp(`more than ${V2_MAX_LENGTH}`));
  });

  test('a wrong version, command, family or transport, or a body too short for its addresses, is an error', () => {
    assert.match(errorOf(parseProxyHeader(v2(0x11, 0x11, new Array(12).fill(0)))), /version 1/);
    assert.match(errorOf(parseProxyHeader(v2(0x22, 0x11, new Array(12).fill(0)))), /command 2/);
    assert.match(errorOf(parseProxyHeader(v2(0x21, 0x41, new Array(12).fill(0)))), /family/);
    assert.match(errorOf(parseProxyHeader(v2(0x21, 0x13, new Array(12).fill(0)))), /family/);
    assert.match(errorOf(parseProxyHeader(v2(0x21, 0x21, new Array(12).fill(0)))), /too short/);
    assert.match(errorOf(parseProxyHeader(v2(0x21, 0x31, new Array(215).fill(0)))), /too short/);
  });

  test('the encoder writes what HAProxy sends: PROXY TCP4/TCP6, or AF_UNSPEC without addresses', () => {
    const four = encodeProxyHeaderV2({
      family: 4,
      source: { address: '203.0.113.9', port: 4711 },
      destination: { address: '127.0.0.1', port: 80 },
    });
    assert.equal(four.toString('hex'), `${SIGNATURE.toString('hex')}2111000c cb007109 7f000001 1267 0050`.replace(/ /g, ''));
    const six = { family: 6, source: { address: '2001:db8::7', port: 1 }, destination: { address: '::ffff:127.0.0.1', port: 2 } } as const;
    assert.deepEqual(header(parseProxyHeader(encodeProxyHeaderV2(six))).header, { version: 2, command: 'proxy', addresses: six });
    assert.deepEqual(header(parseProxyHeader(encodeProxyHeaderV2(undefined))), { header: { version: 2, command: 'proxy' }, length: 16 });
  });
});

test('isProxyHeaderStart: true for either signature, undefined while a prefix of one, else false', () => {
  assert.equal(isProxyHeaderStart(Buffer.from('PROXY TCP4')), true);
  assert.equal(isProxyHeaderStart(SIGNATURE), true);
  assert.equal(isProxyHeaderStart(Buffer.from('PROX')), undefined);
  assert.equal(isProxyHeaderStart(SIGNATURE.subarray(0, 5)), undefined);
  assert.equal(isProxyHeaderStart(Buffer.alloc(0)), undefined);
  assert.equal(isProxyHeaderStart(Buffer.from('POST')), false);
  assert.equal(isProxyHeaderStart(Buffer.from([0x16, 3, 1])), false);
  assert.equal(isProxyHeaderStart(Buffer.from('\r\n\r\nGET')), false);
});

// Properties, against an encoder of the test's own: any header either version can carry.

/** An IPv4 or IPv6 address as 4 or 16 bytes, and its text as Node prints it. */
const ipBytes = (family: 4 | 6): fc.Arbitrary<{ bytes: Buffer; text: string }> =>
  fc.uint8Array({ minLength: family === 4 ? 4 : 16, maxLength: family === 4 ? 4 : 16 }).map((array) => {
    const bytes = Buffer.from(array);
    if (family === 4) return { bytes, text: bytes.join('.') };
    const groups = Array.from({ length: 8 }, (_, at) => bytes.readUInt16BE(at * 2).toString(16));
    return { bytes, text: new net.SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address };
  });

const port = fc.integer({ min: 0, max: 65535 });

/** A path that fits sun_path (108 bytes), NUL-free. */
const unixPath = fc.string({ maxLength: 108, unit: fc.integer({ min: 0x21, max: 0x7e }).map((code) => String.fromCharCode(code)) });

/** TLVs: type, 16-bit length, value; a few small ones, as senders add. */
const tlvs = fc
  .array(fc.tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 64 })), { maxLength: 5 })
  .map((list) =>
    Buffer.concat(list.map(([type, value]) => Buffer.concat([Buffer.from([type, value.length >> 8, value.length & 0xff]), value]))),
  );

/** A valid header's bytes and what parsing them must give. */
interface Encoded {
  bytes: Buffer;
  expected: ProxyHeader;
}

const v1Inet: fc.Arbitrary<Encoded> = fc
  .tuple(fc.constantFrom(4 as const, 6 as const), fc.boolean())
  .chain(([family]) => fc.tuple(fc.constant(family), ipBytes(family), ipBytes(family), port, port))
  .map(([family, source, destination, sourcePort, destinationPort]) => ({
    bytes: Buffer.from(`PROXY TCP${family} ${source.text} ${destination.text} ${sourcePort} ${destinationPort}\r\n`),
    expected: {
      version: 1,
      command: 'proxy',
      addresses: {
        family,
        source: { address: source.text, port: sourcePort },
        destination: { address: destination.text, port: destinationPort },
      },
    },
  }));

const v1Unknown: fc.Arbitrary<Encoded> = fc
  .string({ maxLength: V1_MAX_LENGTH - 16, unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)) })
  .map((rest) => ({ bytes: Buffer.from(`PROXY UNKNOWN${rest ? ` ${rest}` : ''}\r\n`), expected: { version: 1, command: 'proxy' } }));

const v2Inet: fc.Arbitrary<Encoded> = fc
  .constantFrom(4 as const, 6 as const)
  .chain((family) => fc.tuple(fc.constant(family), ipBytes(family), ipBytes(family), port, port, fc.integer({ min: 0, max: 2 }), tlvs))
  .map(([family, source, destination, sourcePort, destinationPort, transport, extra]) => {
    const ports = Buffer.alloc(4);
    ports.writeUInt16BE(sourcePort);
    ports.writeUInt16BE(destinationPort, 2);
    return {
      bytes: v2(0x21, ((family === 4 ? 1 : 2) << 4) | transport, Buffer.concat([source.bytes, destination.bytes, ports, extra])),
      expected: {
        version: 2,
        command: 'proxy',
        addresses: {
          family,
          source: { address: source.text, port: sourcePort },
          destination: { address: destination.text, port: destinationPort },
        },
      },
    };
  });

const v2Unix: fc.Arbitrary<Encoded> = fc
  .tuple(unixPath, unixPath, fc.integer({ min: 0, max: 2 }), tlvs)
  .map(([source, destination, transport, extra]) => {
    const paths = Buffer.alloc(216);
    paths.write(source, 0, 'latin1');
    paths.write(destination, 108, 'latin1');
    return {
      bytes: v2(0x21, 0x30 | transport, Buffer.concat([paths, extra])),
      expected: { version: 2, command: 'proxy', addresses: { family: 'unix', source, destination } },
    };
  });

/** LOCAL with any family, and PROXY with AF_UNSPEC: any body, no addresses. */
const v2Bare: fc.Arbitrary<Encoded> = fc
  .tuple(fc.boolean(), fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 2 }), fc.uint8Array({ maxLength: 300 }))
  .map(([local, family, transport, body]) => ({
    bytes: v2(local ? 0x20 : 0x21, ((local ? family : 0) << 4) | transport, Buffer.from(body)),
    expected: { version: 2, command: local ? 'local' : 'proxy' },
  }));

const validHeader = fc.oneof(v1Inet, v1Unknown, v2Inet, v2Unix, v2Bare);

describe('properties', () => {
  test('any valid header round-trips, whatever follows it, and the bytes after it are left where they were', () => {
    fc.assert(
      fc.property(validHeader, fc.uint8Array({ maxLength: 64 }), ({ bytes, expected }, after) => {
        const parsed = header(parseProxyHeader(Buffer.concat([bytes, after])));
        assert.deepEqual(parsed.header, expected);
        assert.equal(parsed.length, bytes.length);
        assert.deepEqual(Buffer.concat([bytes, after]).subarray(parsed.length), Buffer.from(after));
      }),
      propertyRuns(),
    );
  });

  test('every strict prefix of a valid header needs more bytes', () => {
    fc.assert(
      fc.property(
        validHeader.chain((encoded) => fc.tuple(fc.constant(encoded), fc.integer({ min: 0, max: encoded.bytes.length - 1 }))),
        ([{ bytes }, cut]) => {
          assert.deepEqual(parseProxyHeader(bytes.subarray(0, cut)), { kind: 'needs-more' });
        },
      ),
      propertyRuns(),
    );
  });

  test('the encoder round-trips through the parser', () => {
    const inet = fc
      .constantFrom(4 as const, 6 as const)
      .chain((family) => fc.tuple(fc.constant(family), ipBytes(family), ipBytes(family), port, port));
    fc.assert(
      fc.property(inet, ([family, source, destination, sourcePort, destinationPort]) => {
        const addresses = {
          family,
          source: { address: source.text, port: sourcePort },
          destination: { address: destination.text, port: destinationPort },
        };
        assert.deepEqual(header(parseProxyHeader(encodeProxyHeaderV2(addresses))).header, { version: 2, command: 'proxy', addresses });
      }),
      propertyRuns(),
    );
  });

  test('arbitrary bytes never throw, and give a header only when they begin with a signature', () => {
    const anyBytes = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((array) => Buffer.from(array)),
      // Near misses: a signature, then noise.
      fc
        .tuple(fc.constantFrom(SIGNATURE, Buffer.from('PROXY ')), fc.uint8Array({ maxLength: 300 }))
        .map(([start, rest]) => Buffer.concat([start, rest])),
      // A valid header with one byte changed, or cut short, or both.
      fc.tuple(validHeader, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat()).map(([{ bytes }, at, value, cut]) => {
        const changed = Buffer.from(bytes);
        changed[at % changed.length] = value;
        return changed.subarray(0, 1 + (cut % changed.length));
      }),
    );
    fc.assert(
      fc.property(anyBytes, (bytes) => {
        const parsed = parseProxyHeader(bytes);
        assert.ok(['needs-more', 'header', 'error'].includes(parsed.kind));
        if (parsed.kind === 'header') {
          assert.equal(isProxyHeaderStart(bytes), true);
          assert.ok(parsed.length <= bytes.length && parsed.length <= V2_MAX_LENGTH);
        }
        if (parsed.kind === 'needs-more') assert.ok(bytes.length < V2_MAX_LENGTH);
        if (isProxyHeaderStart(bytes) === false) assert.equal(parsed.kind, 'error');
      }),
      propertyRuns(),
    );
  });
});
