// The soak's growth verdict on made-up series: leaks are caught, bounded noise is not.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type GrowthLimits, judgeGrowth, median, type Sample, slope } from '../../bench/growth.js';

const limits: GrowthLimits = { slopePerMinute: 1, absolute: 10, relative: 0.25 };

/** One sample every 5 s for 10 minutes, valued by `at(t)`. */
const series = (at: (t: number) => number): Sample[] => Array.from({ length: 120 }, (_, i) => ({ t: i * 5, value: at(i * 5) }));

test('median and slope', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  assert.equal(median([]), 0);
  assert.equal(
    slope([
      { t: 0, value: 1 },
      { t: 2, value: 5 },
      { t: 4, value: 9 },
    ]),
    2,
  );
  assert.equal(slope([{ t: 1, value: 1 }]), 0);
});

test('a steady climb is growth', () => {
  const verdict = judgeGrowth(
    series((t) => 100 + t / 6),
    limits,
  ); // 10 units a minute
  assert.equal(verdict.grows, true);
  assert.ok(Math.abs(verdict.slopePerMinute - 10) < 1e-9);
});

test('a level series with a sawtooth and spikes is bounded', () => {
  const verdict = judgeGrowth(
    series((t) => 100 + ((t / 5) % 6) * 8 + (t % 85 === 0 ? 500 : 0)),
    limits,
  );
  assert.equal(verdict.grows, false);
});

test('a series that rises then levels off is bounded (the climb has stopped)', () => {
  assert.equal(
    judgeGrowth(
      series((t) => Math.min(100 + t, 300)),
      limits,
    ).grows,
    false,
  );
});

test('a slope too small to matter is bounded, and so is a short run', () => {
  assert.equal(
    judgeGrowth(
      series((t) => 1000 + t / 120),
      limits,
    ).grows,
    false,
  ); // half a unit a minute
  assert.equal(judgeGrowth(series((t) => 100 + t).slice(0, 7), limits).grows, false);
});
