// The CLI's V8 tuning: with it, the young generation stays small under an allocation pattern that makes
// it grow to many MiB without it (the control run proves the pattern does).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const HEAP_MODULE = fileURLToPath(new URL('../src/heap.js', import.meta.url));

/** The young generation's size after many objects survived many scavenges, with or without the tuning. */
function youngGenerationAfterLoad(tuned: boolean): number {
  const script = `
    ${tuned ? `await import(${JSON.stringify(HEAP_MODULE)});` : ''}
    const v8 = await import('node:v8');
    const keep = [];
    for (let i = 0; i < 2e6; i++) {
      keep.push({ i, s: 'x' + i });
      if (keep.length > 200000) keep.splice(0, 100000);
    }
    process.stdout.write(String(v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size));
  `;
  return Number(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }));
}

test('the CLI keeps V8’s young generation at a few MiB where it would grow past 16 MiB', () => {
  const MiB = 1024 * 1024;
  const untuned = youngGenerationAfterLoad(false);
  const tuned = youngGenerationAfterLoad(true);
  assert.ok(untuned > 16 * MiB, `control: without the tuning the young generation grew to ${untuned} bytes`);
  assert.ok(tuned <= 4 * MiB, `with the tuning the young generation is ${tuned} bytes`);
});
