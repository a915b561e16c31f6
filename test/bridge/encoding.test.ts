// Unit tests of subprotocol negotiation, base64 message decoding and close-reason truncation.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { closeReason } from '../../src/bridge/close-codes.js';
import { chooseSubprotocol, decodeBase64Message, parseOfferedProtocols } from '../../src/bridge/encoding.js';
import { HttpError } from '../../src/errors.js';

describe('parseOfferedProtocols', () => {
  test('no header means nothing offered', () => {
    assert.deepEqual(parseOfferedProtocols(undefined), []);
  });
  test('entries are trimmed of spaces and tabs, empty ones dropped', () => {
    assert.deepEqual(parseOfferedProtocols(' binary , foo'), ['binary', 'foo']);
    assert.deepEqual(parseOfferedProtocols('base64,\tbinary ,, '), ['base64', 'binary']);
    assert.deepEqual(parseOfferedProtocols(''), []);
  });
});

describe('chooseSubprotocol', () => {
  test('nothing offered: no protocol in the reply, binary frames', () => {
    assert.deepEqual(chooseSubprotocol([]), { protocol: undefined, encoding: 'binary' });
  });
  test("'binary' wins whenever offered, in any position", () => {
    for (const offered of [['binary'], ['base64', 'binary'], ['foo', 'binary', 'base64']]) {
      assert.deepEqual(chooseSubprotocol(offered), { protocol: 'binary', encoding: 'binary' }, offered.join(','));
    }
  });
  test("'base64' only without 'binary'", () => {
    assert.deepEqual(chooseSubprotocol(['foo', 'base64']), { protocol: 'base64', encoding: 'base64' });
  });
  test('only unknown protocols: HTTP 400 whose reason names them and the protocols spoken', () => {
    assert.throws(
      () => chooseSubprotocol(['foo', 'bar']),
      (err: unknown) => {
        assert.ok(err instanceof HttpError);
        assert.equal(err.status, 400);
        assert.match(err.message, /subprotocol/i);
        assert.match(err.message, /foo, bar/);
        assert.match(err.message, /binary/);
        return true;
      },
    );
  });
  test('names are compared case-sensitively, as Python websockify does', () => {
    assert.throws(() => chooseSubprotocol(['Binary']), HttpError);
  });
});

describe('decodeBase64Message', () => {
  const decode = (text: string): Buffer | undefined => decodeBase64Message(Buffer.from(text, 'latin1'));

  test('padded and unpadded forms decode to the same bytes', () => {
    for (let length = 0; length < 40; length++) {
      const bytes = randomBytes(length);
      const padded = bytes.toString('base64');
      assert.deepEqual(decode(padded), bytes, padded);
      assert.deepEqual(decode(padded.replace(/=+$/, '')), bytes, padded);
    }
  });
  test('a 16 MiB message decodes', () => {
    const bytes = randomBytes(16 * 1024 * 1024);
    assert.ok(decode(bytes.toString('base64'))?.equals(bytes));
  });
  test('the empty message is zero bytes', () => {
    assert.equal(decode('')?.length, 0);
  });
  test('characters outside the alphabet are refused, not skipped', () => {
    for (const text of ['ab c', 'abc\n', 'ab-_', 'QUJD!', 'QUJDRA==\r\n', 'QUJ\u00e9'])
      assert.equal(decode(text), undefined, JSON.stringify(text));
  });
  test('misplaced or excess padding is refused, not cut short', () => {
    for (const text of ['=', '==', 'a=', 'QQ=', 'QUJDRA=', 'QUJD==', 'QUJD====', 'QQ==QUJD', 'Q===', 'QUJ=RA==']) {
      assert.equal(decode(text), undefined, text);
    }
  });
  test('a single leftover character (6 bits) is refused', () => {
    assert.equal(decode('QUJDR'), undefined);
    assert.equal(decode('Q'), undefined);
  });
});

describe('closeReason', () => {
  test('reasons up to 123 bytes are kept', () => {
    const text = 'x'.repeat(123);
    assert.equal(closeReason(text), text);
    assert.equal(closeReason('Target closed'), 'Target closed');
  });
  test('longer reasons are cut to at most 123 bytes with an ellipsis', () => {
    const cut = closeReason('y'.repeat(500));
    assert.equal(Buffer.byteLength(cut), 123);
    assert.ok(cut.endsWith('...'));
    assert.ok(cut.startsWith('y'.repeat(120)));
  });
  test('a cut never splits a multi-byte character', () => {
    for (let shift = 0; shift < 4; shift++) {
      const text = 'a'.repeat(shift) + '\u20ac\u{1F600}'.repeat(60);
      const cut = closeReason(text);
      assert.ok(Buffer.byteLength(cut) <= 123, `${Buffer.byteLength(cut)} bytes`);
      assert.ok(!cut.includes('\uFFFD'), 'replacement character in the cut reason');
      assert.ok(text.startsWith(cut.slice(0, -3)), 'the cut reason is not a prefix of the reason');
    }
  });
});
