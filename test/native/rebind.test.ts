// The bind() shim (native/rebind.c) on its own: a real Python program binds addresses under LD_PRELOAD
// and reports where its sockets ended up; and the shim's parent-death signal.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { shimEnvironment } from '../../src/wrap/shim.js';
import { unusedPort } from '../helpers/targets.js';
import { waitUntil } from '../helpers/wait.js';
import { isRunning, PYTHON, SHIM } from '../wrap/support.js';

/** Binds each [family, host, port, type] in turn and prints where each socket is bound, as JSON. */
const BINDER = `
import json, socket, sys
out = []
for family, host, port, kind in json.loads(sys.argv[1]):
    fam = {'4': socket.AF_INET, '6': socket.AF_INET6, 'unix': socket.AF_UNIX}[family]
    s = socket.socket(fam, socket.SOCK_DGRAM if kind == 'udp' else socket.SOCK_STREAM)
    try:
        s.bind(host if family == 'unix' else (host, port))
        name = s.getsockname()
        out.append([name, 0] if family == 'unix' else [name[0], name[1]])
    except OSError as e:
        out.append(['error', e.errno])
    s.close()
print(json.dumps(out))
`;

type Bind = [family: '4' | '6' | 'unix', host: string, port: number, kind: 'tcp' | 'udp'];

/** Runs the binder with `env` and returns where each bind went. */
function bindAll(binds: Bind[], env: NodeJS.ProcessEnv): Array<[string, number]> {
  const result = spawnSync(PYTHON, ['-c', BINDER, JSON.stringify(binds)], { env, encoding: 'utf8', timeout: 20000 });
  assert.equal(result.status, 0, result.stderr);
  return JSON.parse(result.stdout) as Array<[string, number]>;
}

/** A library that Node itself has loaded, to stand for a preload already set. */
function someLoadedLibrary(): string {
  const found = /\s(\/\S*\/libm\.so\.6)$/m.exec(fs.readFileSync('/proc/self/maps', 'utf8'));
  assert.ok(found, 'libm.so.6 is not mapped in this process');
  return found[1]!;
}

describe('rebind.so', () => {
  test('the shim is built', () => {
    assert.ok(fs.existsSync(SHIM), `${SHIM} is missing: npm run build builds it (needs gcc)`);
  });

  test('binds to the old port on any address move to the new port on loopback; other binds are untouched', async () => {
    const [oldPort, newPort, other] = [await unusedPort(), await unusedPort(), await unusedPort()];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rebind-'));
    try {
      const unixPath = path.join(dir, 'sock');
      const env = shimEnvironment(process.env, SHIM, { oldPort, newPort, parentPid: process.pid });
      const got = bindAll(
        [
          ['4', '0.0.0.0', oldPort, 'tcp'],
          ['4', '', oldPort, 'tcp'],
          ['4', '127.0.0.1', oldPort, 'tcp'],
          ['6', '::', oldPort, 'tcp'],
          ['6', '::1', oldPort, 'tcp'],
          ['4', '0.0.0.0', oldPort, 'udp'],
          ['4', '127.0.0.1', other, 'tcp'],
          ['6', '::', other, 'tcp'],
          ['4', '0.0.0.0', 0, 'tcp'],
          ['unix', unixPath, 0, 'tcp'],
        ],
        env,
      );
      assert.deepEqual(got.slice(0, 6), [
        ['127.0.0.1', newPort],
        ['127.0.0.1', newPort],
        ['127.0.0.1', newPort],
        ['::1', newPort],
        ['::1', newPort],
        ['127.0.0.1', newPort],
      ]);
      assert.deepEqual(got.slice(6, 8), [
        ['127.0.0.1', other],
        ['::', other],
      ]);
      assert.equal(got[8]![0], '0.0.0.0');
      assert.notEqual(got[8]![1], newPort);
      assert.deepEqual(got[9], [unixPath, 0]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('without valid ports in the environment nothing moves', async () => {
    const [oldPort, newPort] = [await unusedPort(), await unusedPort()];
    const bind: Bind[] = [['4', '127.0.0.1', oldPort, 'tcp']];
    const unset = { ...process.env, LD_PRELOAD: SHIM };
    assert.deepEqual(bindAll(bind, unset), [['127.0.0.1', oldPort]]);
    const garbage = { ...unset, REBIND_OLD_PORT: String(oldPort), REBIND_NEW_PORT: `${newPort}x` };
    assert.deepEqual(bindAll(bind, garbage), [['127.0.0.1', oldPort]]);
    const outOfRange = { ...unset, REBIND_OLD_PORT: String(oldPort), REBIND_NEW_PORT: '70000' };
    assert.deepEqual(bindAll(bind, outOfRange), [['127.0.0.1', oldPort]]);
  });

  test('goes in front of an LD_PRELOAD already set, which stays loaded', async () => {
    const [oldPort, newPort] = [await unusedPort(), await unusedPort()];
    const existing = someLoadedLibrary();
    const env = shimEnvironment({ ...process.env, LD_PRELOAD: existing }, SHIM, { oldPort, newPort, parentPid: process.pid });
    assert.equal(env.LD_PRELOAD, `${SHIM}:${existing}`);
    const result = spawnSync(PYTHON, ['-c', 'import sys; print(open("/proc/self/maps").read())'], { env, encoding: 'utf8' });
    assert.ok(result.stdout.includes(SHIM), 'the shim is not loaded');
    assert.ok(result.stdout.includes(existing), 'the earlier preload is no longer loaded');
    assert.deepEqual(bindAll([['4', '0.0.0.0', oldPort, 'tcp']], env), [['127.0.0.1', newPort]]);
  });
});

/**
 * A parent (Python) that starts `child` (a Python snippet) under the shim with REBIND_PARENT_PID naming
 * `parentPid` (default: the parent itself), prints the child's pid, then waits.
 */
function startParent(
  child: string,
  parentPid?: number,
): { proc: ReturnType<typeof spawn>; childPid: Promise<number>; waitFor(pattern: RegExp): Promise<RegExpExecArray> } {
  const parent = `
import os, subprocess, sys, time
env = dict(os.environ, LD_PRELOAD=${JSON.stringify(SHIM)}, REBIND_PARENT_PID=str(${parentPid ?? 'os.getpid()'}))
p = subprocess.Popen([${JSON.stringify(PYTHON)}, '-c', sys.argv[1]], env=env)
sys.stdout.write(f"{p.pid}\\n"); sys.stdout.flush()
p.wait()
sys.stdout.write(f"status {p.returncode}\\n"); sys.stdout.flush()
time.sleep(600)
`;
  const proc = spawn(PYTHON, ['-c', parent, child], { stdio: ['ignore', 'pipe', 'inherit'] });
  proc.stdout!.setEncoding('utf8');
  let out = '';
  const waiters = new Set<() => void>();
  proc.stdout!.on('data', (text: string) => {
    out += text;
    for (const wake of waiters) wake();
  });
  // Everything the parent printed so far is searched, whenever the caller starts waiting. Each line is
  // one write (the processes share the pipe, so a line written in pieces could interleave with another).
  const waitFor = (pattern: RegExp): Promise<RegExpExecArray> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(wake);
        reject(new Error(`nothing matched ${pattern} within 30 s: ${out}`));
      }, 30_000);
      const wake = (): void => {
        const found = pattern.exec(out);
        if (!found) return;
        waiters.delete(wake);
        clearTimeout(timer);
        resolve(found);
      };
      waiters.add(wake);
      proc.once('exit', () => reject(new Error(`the parent exited without printing ${pattern}: ${out}`)));
      wake();
    });
  return { proc, childPid: waitFor(/^(\d+)\n/).then((found) => Number(found[1])), waitFor };
}

describe('rebind.so parent-death signal', () => {
  test('the direct child gets SIGTERM when its parent is killed with SIGKILL', async () => {
    const { proc, childPid } = startParent('import time; time.sleep(600)');
    let pid = 0;
    try {
      pid = await childPid;
      assert.ok(isRunning(pid));
      proc.kill('SIGKILL');
      await once(proc, 'exit');
      await waitUntil(`child ${pid} to exit after its parent's death`, () => !isRunning(pid));
    } finally {
      proc.kill('SIGKILL');
      if (pid && isRunning(pid)) process.kill(pid, 'SIGKILL');
    }
  });

  test('a child whose parent is already gone when the shim loads terminates at once', async () => {
    // REBIND_PARENT_PID names a process that is not the child's parent: as if the proxy died before the shim loaded.
    const { proc, waitFor } = startParent('import time; time.sleep(600)', 1);
    try {
      const [, status] = await waitFor(/status (-?\d+)/);
      assert.equal(status, String(-os.constants.signals.SIGTERM));
    } finally {
      proc.kill('SIGKILL');
    }
  });

  test('only the direct child asks: the variable is gone for its children, and a daemon outlives the parent that started it', async () => {
    // The child starts a grandchild that reports the variable, then exits, as a daemonizing program does.
    const child = `
import os, subprocess, sys
g = subprocess.Popen([${JSON.stringify(PYTHON)}, '-c', 'import os, sys, time; sys.stdout.write("grandchild %d %s" % (os.getpid(), os.environ.get("REBIND_PARENT_PID")) + chr(10)); sys.stdout.flush(); time.sleep(600)'], start_new_session=True)
`;
    const { proc, waitFor } = startParent(child);
    let grandchild = 0;
    try {
      const [, pid, variable] = await waitFor(/grandchild (\d+) (\S+)\n/);
      grandchild = Number(pid);
      await waitFor(/status 0\n/);
      assert.equal(variable, 'None');
      // Its parent (the child) has exited: the grandchild must still run.
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.ok(isRunning(grandchild), 'the grandchild died with its parent');
    } finally {
      proc.kill('SIGKILL');
      if (grandchild && isRunning(grandchild)) process.kill(grandchild, 'SIGKILL');
    }
  });
});
