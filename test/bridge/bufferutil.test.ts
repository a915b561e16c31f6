import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';

test('ws finds the native bufferutil, so masking and unmasking are not done in JavaScript', () => {
  const require = createRequire(import.meta.url);
  // ws loads bufferutil from its own location; resolve it the same way and check it is the native build.
  const wsDir = require.resolve('ws');
  const bufferutil = createRequire(wsDir)('bufferutil') as { mask: unknown; unmask: unknown };
  assert.equal(typeof bufferutil.mask, 'function');
  const fallback = createRequire(wsDir)('bufferutil/fallback') as { mask: unknown };
  assert.notEqual(bufferutil.mask, fallback.mask, 'bufferutil fell back to JavaScript: its native build is missing');
  assert.equal(process.env.WS_NO_BUFFER_UTIL, undefined);
});
