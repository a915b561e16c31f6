import { readFileSync } from 'node:fs';

/**
 * This package's version, from its package.json (two levels above dist/src/), read only when asked, so
 * that starting the command reads no file for it; 'unknown' for a copy of dist/src without it.
 */
export function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
