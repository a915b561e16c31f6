// The Cookie header parser that finds --token-cookie's value: RFC 6265 pairs, quotes, percent-escapes,
// the first of repeated names, and a clean refusal of a malformed value, whatever the bytes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { cookieValue, MalformedCookieError } from '../../src/admission/cookie.js';
import { propertyRuns } from '../helpers/fast-check.js';

/** Whether `text` has a C0 control or DEL (written without a regular expression, which lint forbids for controls). */
const hasControl = (text: string): boolean => [...text].some((char) => char.charCodeAt(0) < 0x20 || char.charCodeAt(0) === 0x7f);

describe('cookieValue', () => {
  test('finds the named pair among others, spaces around pairs ignored, names case-sensitive', () => {
    assert.equal(cookieValue('a=1; token=abc; b=2', 'token'), 'abc');
    assert.equal(cookieValue('token=abc', 'token'), 'abc');
    assert.equal(cookieValue('  token = abc  ;x=y', 'token'), 'abc');
    assert.equal(cookieValue('Token=abc', 'token'), undefined);
    assert.equal(cookieValue('tokens=abc; mytoken=def', 'token'), undefined);
    assert.equal(cookieValue(undefined, 'token'), undefined);
    assert.equal(cookieValue('', 'token'), undefined);
  });

  test('quotes removed, percent-escapes decoded, "+" kept, "=" inside the value kept', () => {
    assert.equal(cookieValue('token="abc"', 'token'), 'abc');
    assert.equal(cookieValue('token=a%20b%2Fc%3D', 'token'), 'a b/c=');
    assert.equal(cookieValue('token=a+b', 'token'), 'a+b');
    assert.equal(cookieValue('token=eyJ.x==', 'token'), 'eyJ.x==');
    assert.equal(cookieValue('token=', 'token'), '');
  });

  test('the first pair of a repeated name wins (browsers send the most specific path first)', () => {
    assert.equal(cookieValue('token=first; token=second', 'token'), 'first');
  });

  test('pairs without "=" and odd cookies of other applications do not refuse the request', () => {
    assert.equal(cookieValue('flag; other=%zz; token=ok', 'token'), 'ok');
    assert.equal(cookieValue('other="unbalanced; token=ok', 'token'), 'ok');
  });

  test('a bad percent-escape or a control character in the named cookie is refused', () => {
    assert.throws(() => cookieValue('token=%zz', 'token'), MalformedCookieError);
    assert.throws(() => cookieValue('token=abc%', 'token'), /malformed percent-escape/);
    assert.throws(() => cookieValue('token=a%0Ab', 'token'), /control character/);
    assert.throws(() => cookieValue('token=a\tb', 'token'), /control character/);
    assert.throws(() => cookieValue('token=a%7Fb', 'token'), /control character/);
  });

  test('any header: a string without control characters, or MalformedCookieError, nothing else', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (header) => {
        try {
          const value = cookieValue(header, 'token');
          assert.ok(value === undefined || (typeof value === 'string' && !hasControl(value)));
        } catch (err) {
          assert.ok(err instanceof MalformedCookieError, String(err));
        }
      }),
      propertyRuns(),
    );
  });

  test('a value written with encodeURIComponent reads back as it was', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', minLength: 1 }).filter((s) => !hasControl(s)),
        (token) => {
          assert.equal(cookieValue(`x=1; token=${encodeURIComponent(token)}; y=2`, 'token'), token);
        },
      ),
      propertyRuns(),
    );
  });
});
