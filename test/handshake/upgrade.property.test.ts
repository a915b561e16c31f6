// Properties of the handshake checks (src/handshake/upgrade.ts, and what ws checks after them) through
// the real CLI and an echo target: arbitrary values of the headers a handshake depends on (method,
// Upgrade, Connection, Sec-WebSocket-Key, -Version, -Protocol), each absent, valid, known bad or
// anything, sometimes sent twice. Whether a handshake must pass or must fail is known where every header
// is valid, or one is known bad; values of the 'anything' kind may go either way, but never to a 5xx.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { maskedFrame, Opcode } from '../../bench/wire.js';
import { propertyRuns } from '../helpers/fast-check.js';
import { type RunningProxy, startProxy } from '../helpers/proxy.js';
import { RawConnection } from '../helpers/raw-connection.js';
import { startEchoServer, type TestServer } from '../helpers/targets.js';

/** RFC 6455 section 1.3: the accept value for a key. */
function acceptFor(key: string): string {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
}

/** A header's value as generated, and whether a handshake with it must succeed (true), fail (false), or either. */
interface Field {
  value: string | undefined;
  valid: boolean | undefined;
}
const valid = (value: string | undefined): Field => ({ value, valid: true });
const invalid = (value: string | undefined): Field => ({ value, valid: false });
const unknown = (value: string): Field => ({ value, valid: undefined });

/**
 * Any header value: printable ASCII, obs-text, tabs, and now and then another control character (which
 * the parser refuses). No CR or LF: those end the header line, which the HTTP stage's properties try.
 */
const anyValue = fc
  .array(
    fc.oneof(
      { weight: 12, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
      { weight: 3, arbitrary: fc.integer({ min: 0x80, max: 0xff }) },
      { weight: 1, arbitrary: fc.constantFrom(0x00, 0x01, 0x09, 0x0b, 0x1b, 0x7f) },
    ),
    { maxLength: 30 },
  )
  .map((codes) => String.fromCharCode(...codes));
/** A value the HTTP parser takes (control characters other than tab it refuses). */
const parsable = (value: string): boolean =>
  Array.from(value, (char) => char.charCodeAt(0)).every((code) => code === 0x09 || (code >= 0x20 && code !== 0x7f));
/** `word` with each letter's case chosen at random. */
const anyCase = (word: string): fc.Arbitrary<string> =>
  fc
    .array(fc.boolean(), { minLength: word.length, maxLength: word.length })
    .map((upper) => Array.from(word, (char, i) => (upper[i] ? char.toUpperCase() : char.toLowerCase())).join(''));
const token = fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,12}$/);
const space = fc.constantFrom('', ' ', '\t', '  ');

/** For each header the handshake depends on: values it must accept, and values it must refuse or may. */
const FIELDS = {
  method: {
    good: fc.constant('GET'),
    bad: fc.constantFrom('POST', 'PUT', 'HEAD', 'OPTIONS', 'DELETE').map(invalid),
  },
  upgrade: {
    good: anyCase('websocket'),
    bad: fc.oneof(fc.constantFrom(undefined, 'h2c', 'websocket2', 'web socket', 'TLS/1.2').map(invalid), anyValue.map(unknown)),
  },
  connection: {
    good: fc
      .tuple(
        fc.constantFrom('', 'keep-alive,', 'keep-alive, ', 'close, '),
        anyCase('upgrade'),
        fc.constantFrom('', ', HTTP2-Settings', ',foo'),
      )
      .map(([before, name, after]) => `${before}${name}${after}`),
    bad: fc.oneof(fc.constantFrom(undefined, 'close', 'keep-alive', 'upgraded').map(invalid), anyValue.map(unknown)),
  },
  key: {
    good: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((bytes) => Buffer.from(bytes).toString('base64')),
    bad: fc.oneof(
      fc.constant(invalid(undefined)),
      // The key's alphabet, the wrong length or padding: a nonce of other than 16 bytes.
      fc
        .stringMatching(/^[+/0-9A-Za-z]{0,30}={0,3}$/)
        .filter((text) => !/^[+/0-9A-Za-z]{22}==$/.test(text))
        .map(invalid),
      anyValue.map(unknown),
    ),
  },
  version: {
    good: fc.constantFrom('13', '8'),
    bad: fc.oneof(fc.constantFrom(undefined, '12', '7', '14', '013', '13, 8', '0').map(invalid), anyValue.map(unknown)),
  },
  protocol: {
    // None (one time in four), or a list of distinct tokens naming binary or base64, with any white space.
    good: fc.option(
      fc
        .uniqueArray(fc.oneof(fc.constantFrom('binary', 'base64'), token), { minLength: 1, maxLength: 4 })
        .filter((names) => names.includes('binary') || names.includes('base64'))
        .chain((names) =>
          fc
            .array(fc.tuple(space, space), { minLength: names.length, maxLength: names.length })
            .map((spaces) => names.map((name, i) => `${spaces[i]![0]}${name}${spaces[i]![1]}`).join(',')),
        ),
      { nil: undefined, freq: 4 },
    ),
    bad: fc.oneof(
      // Only protocols the proxy does not speak: nothing to choose.
      fc
        .uniqueArray(
          token.filter((name) => name !== 'binary' && name !== 'base64'),
          { minLength: 1, maxLength: 3 },
        )
        .map((names) => invalid(names.join(', '))),
      fc.constantFrom('binary, binary', 'binary,,base64', ',', 'bin ary', 'binary;q=1').map(invalid),
      anyValue.map(unknown),
    ),
  },
};
type FieldName = keyof typeof FIELDS;
const FIELD_NAMES = Object.keys(FIELDS) as FieldName[];

interface Handshake {
  fields: Record<FieldName, Field>;
  host: string | undefined;
  /** Headers a handshake does not depend on, with any values. */
  others: Array<[string, string]>;
  /** A header among the handshake's own sent a second time, with this value. */
  twice: [string, string] | undefined;
}

const HEADERS = ['Upgrade', 'Connection', 'Sec-WebSocket-Key', 'Sec-WebSocket-Version', 'Sec-WebSocket-Protocol'] as const;
/** A handshake with none, one, a few or any of its own headers spoilt. */
const handshake: fc.Arbitrary<Handshake> = fc.record({
  fields: fc
    .record({
      good: fc.record({
        method: FIELDS.method.good,
        upgrade: FIELDS.upgrade.good,
        connection: FIELDS.connection.good,
        key: FIELDS.key.good,
        version: FIELDS.version.good,
        protocol: FIELDS.protocol.good,
      }),
      bad: fc.record({
        method: FIELDS.method.bad,
        upgrade: FIELDS.upgrade.bad,
        connection: FIELDS.connection.bad,
        key: FIELDS.key.bad,
        version: FIELDS.version.bad,
        protocol: FIELDS.protocol.bad,
      }),
      spoilt: fc.oneof(
        { weight: 3, arbitrary: fc.constant<FieldName[]>([]) },
        { weight: 3, arbitrary: fc.subarray(FIELD_NAMES, { minLength: 1, maxLength: 1 }) },
        { weight: 2, arbitrary: fc.subarray(FIELD_NAMES) },
      ),
    })
    .map(({ good, bad, spoilt }) => {
      const fields = {} as Record<FieldName, Field>;
      for (const name of FIELD_NAMES) fields[name] = spoilt.includes(name) ? bad[name] : valid(good[name]);
      return fields;
    }),
  host: fc.oneof({ weight: 6, arbitrary: fc.constant('127.0.0.1') }, fc.constant(undefined), anyValue),
  others: fc.array(
    fc.tuple(
      fc.constantFrom('Origin', 'Sec-WebSocket-Extensions', 'User-Agent', 'X-Forwarded-For', 'Cookie'),
      fc.oneof({ weight: 4, arbitrary: anyValue.filter(parsable) }, anyValue),
    ),
    { maxLength: 3 },
  ),
  twice: fc.oneof({ weight: 7, arbitrary: fc.constant(undefined) }, fc.tuple(fc.constantFrom(...HEADERS), anyValue)),
});

function requestBytes(h: Handshake): Buffer {
  const lines = [`${h.fields.method.value} / HTTP/1.1`];
  if (h.host !== undefined) lines.push(`Host: ${h.host}`);
  const own: Array<[string, Field]> = [
    ['Upgrade', h.fields.upgrade],
    ['Connection', h.fields.connection],
    ['Sec-WebSocket-Key', h.fields.key],
    ['Sec-WebSocket-Version', h.fields.version],
    ['Sec-WebSocket-Protocol', h.fields.protocol],
  ];
  for (const [name, field] of own) if (field.value !== undefined) lines.push(`${name}: ${field.value}`);
  if (h.twice) lines.push(`${h.twice[0]}: ${h.twice[1]}`);
  for (const [name, value] of h.others) lines.push(`${name}: ${value}`);
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

/** The body of an HTTP answer (`received`, from its status line), by its Content-Length or chunked. */
function bodyOf(received: Buffer): string {
  const text = received.toString('latin1');
  const start = text.indexOf('\r\n\r\n') + 4;
  if (!/\r\ntransfer-encoding: *chunked\r\n/i.test(text.slice(0, start))) return text.slice(start);
  let body = '';
  for (let at = start; ; ) {
    const line = text.indexOf('\r\n', at);
    const size = Number.parseInt(text.slice(at, line), 16);
    if (!(size > 0)) return body;
    body += text.slice(line + 2, line + 2 + size);
    at = line + 2 + size + 2;
  }
}

/** The handshake's own fields, together. */
const fields = (h: Handshake): Field[] => Object.values(h.fields);

/** Whether the handshake must succeed: its own headers valid, each sent once, and the rest parsable. */
function mustPass(h: Handshake): boolean {
  return (
    h.twice === undefined &&
    fields(h).every((field) => field.valid === true) &&
    parsable(h.host ?? '') &&
    h.others.every(([, value]) => parsable(value))
  );
}

/** The protocols offered, as the proxy reads the header (a second one joined to the first). */
function offeredProtocols(h: Handshake): string[] {
  const values = [h.fields.protocol.value, h.twice?.[0] === 'Sec-WebSocket-Protocol' ? h.twice[1] : undefined];
  return values
    .filter((value) => value !== undefined)
    .join(',')
    .split(',')
    .map((entry) => entry.trim());
}

let echo: TestServer;
let proxy: RunningProxy;

before(async () => {
  echo = await startEchoServer();
  proxy = await startProxy(['127.0.0.1:0', `127.0.0.1:${echo.port}`]);
});

after(async () => {
  await proxy?.stop();
  await echo?.close();
});

describe('the handshake checks', () => {
  test('any handshake headers get a 101 with the right Sec-WebSocket-Accept and protocol (and then echo), or a 4xx with a reason; never a 5xx, never a crash; a valid handshake always gets its 101', async () => {
    await fc.assert(
      fc.asyncProperty(handshake, async (h) => {
        // The proxy has no handler of uncaught exceptions or rejections: one would have ended it.
        assert.equal(proxy.proc.exitCode, null, `the proxy exited: ${proxy.stderr().slice(-2000)}`);
        const conn = await RawConnection.open(proxy.port!);
        try {
          conn.write(requestBytes(h));
          const head = await conn.head(10_000);
          assert.ok(head, `no HTTP answer; received ${JSON.stringify(conn.received.toString('latin1'))}`);
          const { status, headers } = head;
          const mustFail = fields(h).some((field) => field.valid === false);
          if (status === 101) {
            assert.ok(!mustFail, `101 for a handshake with a bad header: ${head.statusLine}`);
            assert.equal(headers['sec-websocket-accept'], acceptFor(h.fields.key.value ?? ''));
            assert.equal(headers.upgrade?.toLowerCase(), 'websocket');
            assert.equal(headers.connection?.toLowerCase(), 'upgrade');
            const offered = offeredProtocols(h);
            const chosen = offered.includes('binary') ? 'binary' : offered.includes('base64') ? 'base64' : undefined;
            assert.equal(headers['sec-websocket-protocol'], chosen);
            // The session works: a message reaches the echo target and comes back, in the protocol's encoding.
            const payload = Buffer.from('the handshake held');
            const sent = chosen === 'base64' ? Buffer.from(payload.toString('base64')) : payload;
            conn.write(maskedFrame(sent, chosen === 'base64' ? Opcode.TEXT : Opcode.BINARY));
            assert.deepEqual(await conn.data(sent.length, 10_000), sent);
            return;
          }
          assert.ok(!mustPass(h), `a valid handshake got ${head.statusLine}`);
          assert.ok(status >= 400 && status < 500, `answered ${head.statusLine}`);
          // The reason: a plain-text body that names the status and says more.
          assert.ok(await conn.waitClosed(10_000), `the connection stays open after ${head.statusLine}`);
          // (An answer to HEAD has no content, RFC 9110 section 9.3.2: node:http leaves it out.)
          const body = bodyOf(conn.received);
          if (h.fields.method.value !== 'HEAD' || body !== '')
            assert.match(body, new RegExp(`^${status} \\S.*\\S`), `${head.statusLine} without a reason: ${JSON.stringify(body)}`);
          if (status === 426) assert.equal(headers['sec-websocket-version'], '13');
        } finally {
          conn.destroy();
        }
      }),
      propertyRuns(300),
    );
    assert.equal(proxy.proc.exitCode, null, `the proxy exited: ${proxy.stderr().slice(-2000)}`);
  });
});
