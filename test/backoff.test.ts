import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RestartBackoff } from '../src/backoff.js';

test('quick deaths in a row double the delay up to the maximum; a healthy run starts it over', () => {
  const backoff = new RestartBackoff({ initialMs: 250, maxMs: 2000, healthyMs: 10_000 });
  assert.deepEqual(
    [1, 1, 1, 1, 1].map((ran) => backoff.next(ran)),
    [500, 1000, 2000, 2000, 2000],
  );
  assert.equal(backoff.next(10_000), 250);
  assert.equal(backoff.next(5), 500);
});
