import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { systemErrorText } from '../src/errors.js';

/** The error a real call gives, so the codes are Node's own. */
function failure(call: () => unknown): unknown {
  try {
    call();
  } catch (err) {
    return err;
  }
  assert.fail('the call did not fail');
}

test('system errors in words, without the path the message names already', () => {
  const missing = failure(() => fs.readFileSync('/nonexistent/file'));
  assert.equal(systemErrorText(missing), 'no such file');
  // Creating /nonexistent/file fails for want of its directory.
  assert.equal(systemErrorText(missing, { creating: true }), 'no such directory');
  assert.equal(systemErrorText(failure(() => fs.readFileSync('/'))), 'it is a directory');
  assert.equal(systemErrorText(Object.assign(new Error('listen EADDRINUSE: :::80'), { code: 'EADDRINUSE' })), 'address already in use');
});

test('an error without words for its code keeps its own message', () => {
  assert.equal(systemErrorText(Object.assign(new Error('spawn E2BIG'), { code: 'E2BIG' })), 'spawn E2BIG');
  assert.equal(systemErrorText(new Error('no code at all')), 'no code at all');
  assert.equal(systemErrorText(undefined), 'undefined');
});
