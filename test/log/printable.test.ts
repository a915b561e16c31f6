// printable(): what may go into a log line or an HTTP answer from a client's string.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { printable } from '../../src/log/printable.js';
import { propertyRuns } from '../helpers/fast-check.js';

test('named escapes for newline, return and tab; hex for other controls; \\u for separators and format characters', () => {
  assert.equal(printable('a\nb\rc\td'), 'a\\nb\\rc\\td');
  assert.equal(printable('\x1b[31m\x00\x7f\x85\x9b'), '\\x1b[31m\\x00\\x7f\\x85\\x9b');
  assert.equal(printable('x\u2028y\u2029z\u202e\u200b'), 'x\\u2028y\\u2029z\\u202e\\u200b');
  assert.equal(printable('\ud800'), '\\ud800');
});

test('printable text, non-ASCII letters and emoji included, is left as it is', () => {
  for (const text of ['plain', 'héllo wörld', '日本語', 'emoji 🎉', "quote ' and \\ backslash"]) assert.equal(printable(text), text);
});

test('property: no string comes out with a control, format or separator character, nor with a line break', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), (text) => {
      const out = printable(text);
      assert.ok(!/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u.test(out), JSON.stringify(out));
      // Text without any such character is unchanged.
      if (!/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}]/u.test(text)) assert.equal(out, text);
    }),
    propertyRuns(),
  );
});
