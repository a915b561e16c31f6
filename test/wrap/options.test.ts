// The command line of a wrap: `[host:]port -- PROGRAM ARGS...` and `--wrap-mode`.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseArgs } from '../../src/cli/options.js';
import type { Config } from '../../src/config.js';
import { UsageError } from '../../src/errors.js';
import { runCli } from '../helpers/proxy.js';

function config(argv: string[]): Config {
  const parsed = parseArgs(argv);
  assert.equal(parsed.kind, 'run');
  return (parsed as { config: Config }).config;
}

function usageError(argv: string[], message: RegExp): void {
  assert.throws(
    () => parseArgs(argv),
    (err: unknown) => err instanceof UsageError && message.test(err.message),
  );
}

describe('wrap options', () => {
  test('everything after -- is the program and its arguments, options included; the mode defaults to exit', () => {
    const { proxy } = config(['-v', '2023', '--', 'vncserver', '-geometry', '800x600', '--', '-v']);
    assert.deepEqual(proxy.wrap, { command: 'vncserver', args: ['-geometry', '800x600', '--', '-v'], mode: 'exit' });
    assert.deepEqual(proxy.listen, { kind: 'tcp', host: '', port: 2023 });
  });

  test('--wrap-mode takes exit, ignore or respawn', () => {
    assert.equal(config(['--wrap-mode', 'respawn', '127.0.0.1:2023', '--', 'x']).proxy.wrap?.mode, 'respawn');
    assert.equal(config(['--wrap-mode=ignore', '2023', '--', 'x']).proxy.wrap?.mode, 'ignore');
    usageError(['--wrap-mode', 'restart', '2023', '--', 'x'], /restart/);
  });

  test('no wrap without --', () => {
    assert.equal(config(['2023', 'localhost:5900']).proxy.wrap, undefined);
  });

  test('usage errors', () => {
    usageError(['2023', '--'], /missing the program/);
    usageError(['--wrap-mode', 'respawn', '2023', 'localhost:5900'], /--wrap-mode needs a program/);
    usageError(['2023', 'localhost:5900', '--', 'x'], /too many arguments.*'localhost:5900'/);
    usageError(['--unix-listen', '/tmp/s', '--', 'x'], /needs a TCP listen port/);
    usageError(['--inetd', '--', 'x'], /needs a TCP listen port/);
    usageError(['2023', '--unix-target', '/tmp/s', '--', 'x'], /--unix-target cannot be used with -- PROGRAM/);
    usageError(['--', 'x'], /missing the listen address/);
  });

  test('the CLI says a missing program is not found, before listening', async () => {
    const result = await runCli(['127.0.0.1:0', '--', 'no-such-program-for-websockify']);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /cannot wrap no-such-program-for-websockify: command not found/);
  });
});
