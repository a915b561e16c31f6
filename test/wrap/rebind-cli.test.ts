// The standalone `rebind OLD NEW -- PROGRAM` helper.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loopbackListener } from '../../src/wrap/loopback.js';
import { unusedPort } from '../helpers/targets.js';
import { waitUntil } from '../helpers/wait.js';
import { isRunning, PYTHON } from './support.js';

const REBIND = fileURLToPath(new URL('../../src/cli/rebind.js', import.meta.url));

function rebind(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [REBIND, ...args], { encoding: 'utf8', timeout: 30000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('rebind', () => {
  test('runs the program with its binds to OLD moved to NEW on loopback, IPv4 and IPv6, and passes its exit status on', async () => {
    const [oldPort, newPort] = [await unusedPort(), await unusedPort()];
    const program = `
import socket, sys
for fam, host in ((socket.AF_INET, '0.0.0.0'), (socket.AF_INET6, '::')):
    s = socket.socket(fam)
    s.bind((host, ${oldPort}))
    print(*s.getsockname()[:2])
    s.close()
sys.exit(3)
`;
    const result = rebind([String(oldPort), String(newPort), '--', PYTHON, '-c', program]);
    assert.equal(result.stdout, `127.0.0.1 ${newPort}\n::1 ${newPort}\n`);
    assert.equal(result.status, 3, result.stderr);
  });

  test('the -- is optional, as in Python websockify', async () => {
    const [oldPort, newPort] = [await unusedPort(), await unusedPort()];
    const result = rebind([
      String(oldPort),
      String(newPort),
      PYTHON,
      '-c',
      `import socket; s = socket.socket(); s.bind(('', ${oldPort})); print(s.getsockname()[1])`,
    ]);
    assert.equal(result.stdout, `${newPort}\n`);
  });

  test('SIGTERM to rebind reaches the program; its death by signal is 128 + n', async () => {
    const [oldPort, newPort] = [await unusedPort(), await unusedPort()];
    const proc = spawn(
      process.execPath,
      [
        REBIND,
        String(oldPort),
        String(newPort),
        '--',
        PYTHON,
        '-c',
        `import socket, time; s = socket.socket(); s.bind(('', ${oldPort})); s.listen(); time.sleep(600)`,
      ],
      {
        stdio: 'ignore',
      },
    );
    try {
      // Listening on the new port means the program runs.
      await waitUntil('the program to listen on the new port', () => loopbackListener(newPort) === '127.0.0.1');
      proc.kill('SIGTERM');
      const [code] = (await once(proc, 'exit')) as [number | null];
      assert.equal(code, 143);
    } finally {
      if (proc.pid && isRunning(proc.pid)) proc.kill('SIGKILL');
    }
  });

  test('usage errors exit 2; a missing program 127', () => {
    for (const args of [[], ['80'], ['80', '8080'], ['x', '8080', 'true'], ['80', '80', 'true'], ['80', '70000', 'true']]) {
      const result = rebind(args);
      assert.equal(result.status, 2, `rebind ${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, /^rebind: error: .*\nusage: rebind OLD_PORT NEW_PORT/);
    }
    const missing = rebind(['8000', '8001', '--', 'no-such-program-for-rebind']);
    assert.equal(missing.status, 127);
    assert.match(missing.stderr, /no-such-program-for-rebind: command not found/);
  });
});
