// The install without a C compiler: building the shim does not fail, everything but wrapping works, and
// wrapping fails with a message that names the package to install. Runs a copy of the compiled CLI
// whose shim directory is the one built here, so the real build's shim is left alone.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const DIST = fileURLToPath(new URL('../../', import.meta.url));
const BUILD_NATIVE = fileURLToPath(new URL('../../../scripts/build-native.mjs', import.meta.url));

/** A copy of dist/src under dist/ (so that node_modules is still found), with its own native/ beside it. */
let copy: string;

before(() => {
  copy = fs.mkdtempSync(path.join(DIST, 'test-no-cc-'));
  fs.cpSync(path.join(DIST, 'src'), path.join(copy, 'src'), { recursive: true });
});
after(() => fs.rmSync(copy, { recursive: true, force: true }));

/** Runs a Node script from the copy (or elsewhere) with `env`. */
function run(
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [script, ...args], { env, encoding: 'utf8', timeout: 60000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Asserts that a message names the package to install. */
function namesPackage(text: string): void {
  assert.match(text, /gcc/);
  assert.match(text, /build-essential/);
}

describe('building without a C compiler', () => {
  for (const [name, env] of [
    ['CC names a compiler that does not exist', { ...process.env, CC: '/nonexistent/cc' }],
    ['PATH has no cc', { ...process.env, CC: '', PATH: '/nonexistent' }],
  ] as const) {
    test(`${name}: the build step succeeds and wrapping fails naming the package`, () => {
      const native = path.join(copy, 'native');
      fs.rmSync(native, { recursive: true, force: true });
      const build = run(BUILD_NATIVE, [native], env);
      assert.equal(build.status, 0, build.stderr);
      assert.match(build.stderr, /warning: rebind\.so not built/);
      namesPackage(build.stderr);
      assert.ok(!fs.existsSync(path.join(native, 'rebind.so')));

      // The rest of the CLI works.
      const help = run(path.join(copy, 'src/cli/main.js'), ['--help']);
      assert.equal(help.status, 0, help.stderr);
      assert.match(help.stdout, /-- PROGRAM/);

      const wrap = run(path.join(copy, 'src/cli/main.js'), ['127.0.0.1:0', '--', '/bin/true']);
      assert.equal(wrap.status, 1, wrap.stderr);
      assert.match(wrap.stderr, /^websockify: cannot wrap a program: the bind\(\) shim rebind\.so was not built/);
      namesPackage(wrap.stderr);

      const rebind = run(path.join(copy, 'src/cli/rebind.js'), ['1000', '2000', '--', '/bin/true']);
      assert.equal(rebind.status, 1, rebind.stderr);
      namesPackage(rebind.stderr);

      // Without the notification addon a service manager is not told, and the proxy says why, and serves.
      assert.match(build.stderr, /warning: notify\.node not built/);
      const notify = run(path.join(copy, 'src/cli/main.js'), ['--timeout', '0.2', '127.0.0.1:0', '127.0.0.1:1'], {
        ...process.env,
        NOTIFY_SOCKET: '/nonexistent/notify',
      });
      assert.equal(notify.status, 0, notify.stderr);
      assert.match(
        notify.stderr,
        /WARN: NOTIFY_SOCKET is set, but the service manager cannot be told that the proxy is ready: no C compiler/,
      );
      namesPackage(notify.stderr);
    });
  }

  test('with a compiler the same script builds the shim, and a failed build leaves no stale library behind', () => {
    const native = path.join(copy, 'native');
    fs.rmSync(native, { recursive: true, force: true });
    const build = run(BUILD_NATIVE, [native]);
    assert.equal(build.status, 0, build.stderr);
    assert.ok(fs.existsSync(path.join(native, 'rebind.so')), build.stderr);
    assert.ok(!fs.existsSync(path.join(native, 'rebind.so.missing')));
    assert.ok(fs.existsSync(path.join(native, 'notify.node')), build.stderr);
    // A compiler that fails: the old library must not stay to hide the failure.
    const failed = run(BUILD_NATIVE, [native], { ...process.env, CC: '/bin/false' });
    assert.equal(failed.status, 0, failed.stderr);
    assert.ok(!fs.existsSync(path.join(native, 'rebind.so')));
    assert.match(fs.readFileSync(path.join(native, 'rebind.so.missing'), 'utf8'), /failed/);
  });
});
