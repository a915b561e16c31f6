#!/usr/bin/env node
// npm test: runs the compiled tests (scripts/run-tests.mjs) under c8, which sets NODE_V8_COVERAGE so
// every Node process the tests start (the CLI among them) records its coverage too; reports src/ (mapped
// back to the .ts files) as configured in .c8rc.json. The floor there is checked on the whole suite
// only: a filtered run (npm test -- bridge) reports what it covered but cannot fail on it.
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';

const filters = process.argv.slice(2);
// A missing c8 is an error (it is a devDependency), never a run without coverage.
const c8 = createRequire(import.meta.url).resolve('c8/bin/c8.js');
// Some tests run the CLI as another user (nobody); it must be able to write its coverage file too, or it
// prints EACCES on stderr. So the folder is made here, writable by all and sticky as /tmp, and c8 is told
// to keep it rather than make it anew.
const tempDirectory = 'coverage/tmp';
rmSync(tempDirectory, { recursive: true, force: true });
mkdirSync(tempDirectory, { recursive: true });
chmodSync(tempDirectory, 0o1777);
const args = [
  c8,
  `--temp-directory=${tempDirectory}`,
  '--clean=false',
  ...(filters.length > 0 ? ['--check-coverage=false'] : []),
  process.execPath,
  'scripts/run-tests.mjs',
  ...filters,
];
const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(result.status ?? 1);
