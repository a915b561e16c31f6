#!/usr/bin/env node
// Runs every compiled test file (dist/test/**/*.test.js) with Node's test runner; extra arguments
// filter the files by substring (npm test -- bridge).
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = 'dist/test';
const files = readdirSync(root, { recursive: true })
  .map(String)
  .filter((file) => file.endsWith('.test.js'))
  .map((file) => join(root, file))
  .filter((file) => process.argv.length <= 2 || process.argv.slice(2).some((filter) => file.includes(filter)))
  .sort();
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
// A test that hangs fails after five minutes (far above the slowest test) instead of holding the run
// until CI's limit; tests set tighter guards of their own where a hang is likely.
const result = spawnSync(process.execPath, ['--test', '--test-reporter=spec', '--test-timeout=300000', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
