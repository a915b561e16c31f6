import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { exitStatus } from '../src/exit-status.js';

/** How a real child ends, as Node's 'exit' event reports it. */
async function ending(script: string, signal?: NodeJS.Signals): Promise<[number | null, NodeJS.Signals | null]> {
  const child = spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
  if (signal) child.kill(signal);
  return (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
}

test('an exit code as it is; a death by signal as 128 + its number, as a shell reports it', async () => {
  assert.equal(exitStatus(...(await ending('process.exit(3)'))), 3);
  assert.equal(exitStatus(...(await ending('setTimeout(() => {}, 10000)', 'SIGTERM'))), 143);
  assert.equal(exitStatus(...(await ending('setTimeout(() => {}, 10000)', 'SIGKILL'))), 137);
  assert.equal(exitStatus(0, null), 0);
});
