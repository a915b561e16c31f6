import fc, { type Parameters } from 'fast-check';

/**
 * fast-check's run settings for property tests: a fixed seed, so a CI run is repeatable (a failure
 * prints its seed and path; `FC_SEED=...` replays it), and `FC_RUNS` to run longer than the default.
 */
export function propertyRuns<T>(defaultRuns = 1000): Parameters<T> {
  return { seed: Number(process.env.FC_SEED ?? 20261128), numRuns: Number(process.env.FC_RUNS ?? defaultRuns) };
}

/** `bytes` cut at the given offsets (any order, repeats and out-of-range ones ignored), every byte kept. */
export function splitAt(bytes: Uint8Array, cuts: readonly number[]): Buffer[] {
  const whole = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const points = [...new Set(cuts.filter((cut) => cut > 0 && cut < whole.length))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const point of [...points, whole.length]) {
    chunks.push(whole.subarray(start, point));
    start = point;
  }
  return chunks.filter((chunk) => chunk.length > 0);
}

/**
 * Bytes from `bytes`, and the same bytes split at random points, as a stream parser may be handed them:
 * sometimes one chunk, sometimes a byte at a time, mostly something between.
 */
export function chunked(bytes: fc.Arbitrary<Uint8Array>): fc.Arbitrary<{ bytes: Buffer; chunks: Buffer[] }> {
  return bytes.chain((array) => {
    const whole = Buffer.from(array);
    const cuts = fc.oneof(
      { weight: 1, arbitrary: fc.constant(Array.from({ length: whole.length }, (_, at) => at)) },
      { weight: 4, arbitrary: fc.array(fc.integer({ min: 1, max: Math.max(1, whole.length - 1) }), { maxLength: 24 }) },
    );
    return cuts.map((points) => ({ bytes: whole, chunks: splitAt(whole, points) }));
  });
}
