import type { Parameters } from 'fast-check';

/**
 * fast-check's run settings for property tests: a fixed seed, so a CI run is repeatable (a failure
 * prints its seed and path; `FC_SEED=...` replays it), and `FC_RUNS` to run longer than the default.
 */
export function propertyRuns<T>(defaultRuns = 1000): Parameters<T> {
  return { seed: Number(process.env.FC_SEED ?? 20261128), numRuns: Number(process.env.FC_RUNS ?? defaultRuns) };
}
