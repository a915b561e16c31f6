// The soak's verdict on a sampled series: bounded (it levels off, or wanders) or growing without bound.

/** One reading of a metric, `t` in seconds from the start of the run. */
export interface Sample {
  t: number;
  value: number;
}

/** How much growth a metric may show before it counts as unbounded. */
export interface GrowthLimits {
  /** Largest least-squares slope over the second half of the measured samples, in units per minute. */
  slopePerMinute: number;
  /** The last quarter's median may exceed the first quarter's by this much ... */
  absolute: number;
  /** ... or by this fraction of the first quarter's median, whichever is larger. */
  relative: number;
}

/** What {@link judgeGrowth} found. */
export interface GrowthVerdict {
  /** Median of the first quarter of the measured samples (after the warm-up). */
  firstQuarterMedian: number;
  lastQuarterMedian: number;
  /** Least-squares slope over the second half of the measured samples, per minute. */
  slopePerMinute: number;
  /** Both signs of a leak: a steady climb at the end and a clear rise between the quarters. */
  grows: boolean;
}

/** The median of `values` (0 for none). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** The least-squares slope of value over time, per second (0 for fewer than two distinct times). */
export function slope(samples: readonly Sample[]): number {
  const n = samples.length;
  if (n < 2) return 0;
  const meanT = samples.reduce((sum, s) => sum + s.t, 0) / n;
  const meanV = samples.reduce((sum, s) => sum + s.value, 0) / n;
  let covariance = 0;
  let variance = 0;
  for (const s of samples) {
    covariance += (s.t - meanT) * (s.value - meanV);
    variance += (s.t - meanT) ** 2;
  }
  return variance === 0 ? 0 : covariance / variance;
}

/**
 * Judges the samples taken after the warm-up. A bounded metric may be noisy (a heap's sawtooth, a burst
 * of descriptors), so growth needs both a slope above the limit over the second half and a last-quarter
 * median clearly above the first quarter's; medians ignore single spikes.
 */
export function judgeGrowth(measured: readonly Sample[], limits: GrowthLimits): GrowthVerdict {
  const quarter = Math.max(1, Math.floor(measured.length / 4));
  const firstQuarterMedian = median(measured.slice(0, quarter).map((s) => s.value));
  const lastQuarterMedian = median(measured.slice(-quarter).map((s) => s.value));
  const slopePerMinute = slope(measured.slice(Math.floor(measured.length / 2))) * 60;
  const allowed = Math.max(limits.absolute, Math.abs(firstQuarterMedian) * limits.relative);
  const grows = measured.length >= 8 && slopePerMinute > limits.slopePerMinute && lastQuarterMedian - firstQuarterMedian > allowed;
  return { firstQuarterMedian, lastQuarterMedian, slopePerMinute, grows };
}
