import assert from 'node:assert/strict';
import fs from 'node:fs';

/**
 * For a test's `skip` option: outside CI, the reason to skip when a program it needs is missing. Under
 * CI=true nothing is skipped, and the test's own {@link assertTools} fails instead (scripts/test-all.sh
 * installs them).
 */
export function skipWithout(...files: string[]): string | false {
  if (process.env.CI === 'true') return false;
  const missing = files.filter((file) => !fs.existsSync(file));
  return missing.length > 0 ? `missing ${missing.join(', ')}` : false;
}

/** Fails the test when a program it needs is missing (the CI case of {@link skipWithout}). */
export function assertTools(...files: string[]): void {
  for (const file of files) assert.ok(fs.existsSync(file), `${file} is needed (see scripts/test-all.sh)`);
}
