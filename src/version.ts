import { readFileSync } from 'node:fs';

/**
 * This package's version, from its package.json (two levels above dist/src/), read when asked: a build
 * run from a copy of dist/src without it (as a test of the build does) still starts, saying 'unknown'.
 */
export function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
