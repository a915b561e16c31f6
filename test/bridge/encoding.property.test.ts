// Properties of the untrusted-text parsers of the handshake and the bridge: the Sec-WebSocket-Protocol
// list and the base64 text messages of the `base64` subprotocol.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { chooseSubprotocol, decodeBase64Message, parseOfferedProtocols } from '../../src/bridge/encoding.js';
import { HttpError } from '../../src/errors.js';
import { propertyRuns } from '../helpers/fast-check.js';

/** Characters a header value may hold (Node hands header values over as Latin-1), weighted toward the list's syntax. */
const headerChar = fc.oneof(
  fc.constantFrom(',', ' ', '\t', 'binary', 'base64', 'b', '='),
  fc.integer({ min: 0x20, max: 0xff }).map((code) => String.fromCharCode(code)),
);
const headerValue = fc.array(headerChar, { maxLength: 40 }).map((parts) => parts.join(''));

/** A protocol name as clients send them: an RFC 7230 token. */
const token = fc.stringMatching(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,12}$/);

describe('Sec-WebSocket-Protocol', () => {
  test('any header value parses into trimmed, non-empty, comma-free entries, without throwing', () => {
    fc.assert(
      fc.property(headerValue, (value) => {
        const entries = parseOfferedProtocols(value);
        for (const entry of entries) {
          assert.ok(entry !== '' && !entry.includes(',') && entry === entry.trim());
          assert.ok(value.includes(entry));
        }
      }),
      propertyRuns(),
    );
  });

  test('a list of tokens, joined with any optional white space, parses back to the same list', () => {
    const space = fc.constantFrom('', ' ', '\t', '  ', ' \t');
    fc.assert(
      fc.property(fc.array(fc.tuple(space, token, space), { maxLength: 8 }), (items) => {
        const header = items.map(([before, name, after]) => `${before}${name}${after}`).join(',');
        assert.deepEqual(
          parseOfferedProtocols(header),
          items.map(([, name]) => name),
        );
      }),
      propertyRuns(),
    );
  });

  test('the choice is binary, else base64, else none when nothing is offered; otherwise a 400 naming the offer', () => {
    fc.assert(
      fc.property(headerValue, (value) => {
        const offered = parseOfferedProtocols(value);
        let choice: ReturnType<typeof chooseSubprotocol>;
        try {
          choice = chooseSubprotocol(offered);
        } catch (err) {
          assert.ok(err instanceof HttpError, 'only an HttpError may escape');
          assert.equal(err.status, 400);
          assert.ok(offered.length > 0 && !offered.includes('binary') && !offered.includes('base64'));
          assert.ok(err.message.includes(offered.join(', ')));
          return;
        }
        if (offered.includes('binary')) assert.deepEqual(choice, { protocol: 'binary', encoding: 'binary' });
        else if (offered.includes('base64')) assert.deepEqual(choice, { protocol: 'base64', encoding: 'base64' });
        else assert.deepEqual(offered, []);
      }),
      propertyRuns(),
    );
  });
});

describe('base64 messages', () => {
  test('any bytes, encoded with or without padding, decode to themselves', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (array, padded) => {
        const bytes = Buffer.from(array);
        const text = padded ? bytes.toString('base64') : bytes.toString('base64').replace(/=+$/, '');
        assert.deepEqual(decodeBase64Message(Buffer.from(text, 'latin1')), bytes);
      }),
      propertyRuns(),
    );
  });

  test('any text is refused or decoded without throwing, and what decodes is the standard base64 reading of it', () => {
    const text = fc.oneof(
      fc.uint8Array({ maxLength: 64 }).map((array) => Buffer.from(array)),
      // Mostly the alphabet, with padding and strays where they may or may not belong.
      fc
        .array(fc.oneof(fc.constantFrom('A', 'z', '0', '+', '/', '='), fc.constantFrom('-', '_', ' ', '\n', '\0', '\xff')), {
          maxLength: 24,
        })
        .map((chars) => Buffer.from(chars.join(''), 'latin1')),
    );
    fc.assert(
      fc.property(text, (data) => {
        const decoded = decodeBase64Message(data);
        const string = data.toString('latin1');
        const valid = /^[A-Za-z0-9+/]*$/.test(string.replace(/={1,2}$/, '')) && string.replace(/={1,2}$/, '').length % 4 !== 1;
        const paddingOk = !string.endsWith('=') || (string.length % 4 === 0 && string.replace(/={1,2}$/, '').length % 4 !== 0);
        if (!valid || !paddingOk) {
          assert.equal(decoded, undefined);
          return;
        }
        assert.ok(decoded !== undefined, 'valid base64 refused');
        // Node's decoder agrees on valid input (it is lenient only on invalid input).
        assert.deepEqual(decoded, Buffer.from(string, 'base64'));
        assert.equal(decoded.length, Math.floor((string.replace(/=+$/, '').length * 3) / 4));
      }),
      propertyRuns(),
    );
  });
});
