// The wrap modes and the program's life: exit hands back its status, ignore keeps serving after it
// daemonizes, respawn backs off; the program never outlives the proxy (SIGTERM or SIGKILL); and a
// program that never listens gets a warning naming the likely cause.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startProxy } from '../helpers/proxy.js';
import { unusedPort } from '../helpers/targets.js';
import { assertTools, skipWithout } from '../helpers/tools.js';
import { waitUntil } from '../helpers/wait.js';
import { openClient } from '../helpers/ws-client.js';
import { descendants, echoSession, eventsNamed, isRunning, PYTHON, receive, waitForCount } from './support.js';

const SOCAT = '/usr/bin/socat';

/** Forks into the background twice (leaving the process group), writes its pid, then echoes on PORT. */
const DAEMON = `
import os, socket, sys
port, pidfile = int(sys.argv[1]), sys.argv[2]
if os.fork(): sys.exit(0)
os.setsid()
if os.fork(): os._exit(0)
null = os.open(os.devnull, os.O_RDWR)
for fd in (0, 1, 2): os.dup2(null, fd)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('', port))
s.listen()
open(pidfile + '.tmp', 'w').write(str(os.getpid()))
os.rename(pidfile + '.tmp', pidfile)
while True:
    c, _ = s.accept()
    while True:
        d = c.recv(65536)
        if not d: break
        c.sendall(d)
    c.close()
`;

/** Listens on PORT and ignores SIGTERM, so that only SIGKILL ends it. */
const STUBBORN = `
import signal, socket, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
s = socket.socket()
s.bind(('', int(sys.argv[1])))
s.listen()
time.sleep(600)
`;

let dir: string;
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wrap-modes-'));
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Kills whatever a failed test left running. */
function cleanUp(pids: number[]): void {
  for (const pid of pids) if (isRunning(pid)) process.kill(pid, 'SIGKILL');
}

describe('--wrap-mode exit', () => {
  test('the proxy exits with the program exit status', async () => {
    const proxy = await startProxy([`127.0.0.1:${await unusedPort()}`, '--', '/bin/sh', '-c', 'sleep 1; exit 7']);
    try {
      const status = await proxy.exited;
      assert.equal(status.code, 7);
      assert.equal(eventsNamed(proxy, 'program-exit')[0]?.status, 7);
    } finally {
      await proxy.stop();
    }
  });

  test('a program killed by signal n makes the proxy exit with 128 + n', async () => {
    const proxy = await startProxy([
      `127.0.0.1:${await unusedPort()}`,
      '--wrap-mode',
      'exit',
      '--',
      '/bin/sh',
      '-c',
      'sleep 1; kill -TERM $$',
    ]);
    try {
      assert.equal((await proxy.exited).code, 128 + os.constants.signals.SIGTERM);
    } finally {
      await proxy.stop();
    }
  });
});

describe('--wrap-mode ignore', () => {
  test('serves after the program daemonizes, and the daemon goes when the proxy is killed with SIGKILL', {
    skip: skipWithout(PYTHON),
  }, async () => {
    assertTools(PYTHON);
    const port = await unusedPort();
    const pidFile = path.join(dir, 'daemon.pid');
    const proxy = await startProxy(['--wrap-mode', 'ignore', `127.0.0.1:${port}`, '--', PYTHON, '-c', DAEMON, String(port), pidFile]);
    let daemon = 0;
    try {
      // The foreground process exits at once; the proxy stays.
      const exit = await waitForCount(proxy, 'program-exit', 1);
      assert.equal(exit.status, 0);
      await waitForCount(proxy, 'program-listening', 1);
      await waitUntil('the daemon pid file', () => fs.existsSync(pidFile));
      daemon = Number(fs.readFileSync(pidFile, 'utf8'));
      assert.ok(isRunning(daemon));
      assert.equal(await echoSession(proxy.url, 'after the daemon forked'), 'after the daemon forked');
      assert.equal(proxy.proc.exitCode, null, 'the proxy exited with the foreground process');

      await proxy.stop('SIGKILL');
      await waitUntil(`the daemon (pid ${daemon}) to be stopped`, () => !isRunning(daemon));
    } finally {
      await proxy.stop('SIGKILL');
      cleanUp([daemon]);
    }
  });
});

describe('--wrap-mode respawn', () => {
  test('a program that keeps dying is restarted with a growing delay, each restart logged', async () => {
    const proxy = await startProxy(['--wrap-mode', 'respawn', `127.0.0.1:${await unusedPort()}`, '--', '/bin/sh', '-c', 'exit 3']);
    try {
      await waitForCount(proxy, 'program-respawn', 3);
      const respawns = eventsNamed(proxy, 'program-respawn').slice(0, 3);
      assert.deepEqual(
        respawns.map((event) => [event.status, event.restart]),
        [
          [3, 1],
          [3, 2],
          [3, 3],
        ],
      );
      const delays = respawns.map((event) => Number(event.delay));
      assert.ok(delays[0]! > 0 && delays[1]! === delays[0]! * 2 && delays[2]! === delays[1]! * 2, `delays ${delays.join(', ')}`);
      assert.match(String(respawns[0]!.msg), /exited with status 3 .*; restart 1 in [\d.]+ s/);
    } finally {
      await proxy.stop();
    }
  });
});

describe('the program never outlives the proxy', () => {
  /** A program with a child of its own in its process group, and a session open through it. */
  async function startFamily(): Promise<{ proxy: Awaited<ReturnType<typeof startProxy>>; pids: number[] }> {
    const port = await unusedPort();
    const proxy = await startProxy([
      `127.0.0.1:${port}`,
      '--',
      '/bin/sh',
      '-c',
      `sleep 1000 & exec ${SOCAT} TCP-LISTEN:${port},reuseaddr,fork EXEC:cat`,
    ]);
    await waitForCount(proxy, 'program-listening', 1);
    const ws = await openClient(proxy.url, 'binary');
    const echoed = receive(ws, 5);
    ws.send(Buffer.from('hello'));
    assert.equal((await echoed).toString(), 'hello');
    const main = Number(eventsNamed(proxy, 'program-start')[0]!.pid);
    // socat, the sleep, and socat's per-connection child with its cat.
    await waitUntil('the program and its children', () => descendants(main).length >= 3);
    return { proxy, pids: [main, ...descendants(main)] };
  }

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    test(`after ${signal} of the proxy no process of the program is left`, { skip: skipWithout(SOCAT) }, async () => {
      assertTools(SOCAT);
      const { proxy, pids } = await startFamily();
      try {
        assert.ok(pids.every(isRunning));
        await proxy.stop(signal);
        await waitUntil(`${pids.filter(isRunning).join(', ')} to be gone`, () => !pids.some(isRunning));
      } finally {
        await proxy.stop('SIGKILL');
        cleanUp(pids);
      }
    });
  }

  test('after SIGKILL of the proxy, a program that ignores SIGTERM gets SIGKILL after the grace period', {
    skip: skipWithout(PYTHON),
  }, async () => {
    assertTools(PYTHON);
    const port = await unusedPort();
    const proxy = await startProxy([`127.0.0.1:${port}`, '--', PYTHON, '-c', STUBBORN, String(port)]);
    let pid = 0;
    try {
      await waitForCount(proxy, 'program-listening', 1);
      pid = Number(eventsNamed(proxy, 'program-start')[0]!.pid);
      await proxy.stop('SIGKILL');
      await waitUntil(`the program (pid ${pid}) to be killed`, () => !isRunning(pid));
    } finally {
      await proxy.stop('SIGKILL');
      cleanUp([pid]);
    }
  });
});

describe('a program that does not listen', () => {
  test('gets a warning naming the likely causes', async () => {
    const proxy = await startProxy([`127.0.0.1:${await unusedPort()}`, '--', 'sleep', '600']);
    try {
      const warning = await proxy.waitForEvent((event) => event.event === 'program-not-listening', 30000);
      assert.equal(warning.level, 40);
      assert.match(String(warning.msg), /sleep has not listened on port \d+ within \d+ s/);
      assert.match(String(warning.msg), /listens on another port/);
      assert.match(String(warning.msg), /statically linked/);
    } finally {
      await proxy.stop();
    }
  });

  test('a statically linked program: the warning says that the shim is not loaded in it', {
    skip: skipWithout('/usr/bin/cc'),
  }, async () => {
    assertTools('/usr/bin/cc');
    const source = path.join(dir, 'static.c');
    const binary = path.join(dir, 'static-server');
    fs.writeFileSync(source, '#include <unistd.h>\nint main(void) { pause(); return 0; }\n');
    const built = spawnSync('cc', ['-static', '-o', binary, source], { encoding: 'utf8' });
    assert.equal(built.status, 0, `cc -static failed (libc6-dev provides libc.a): ${built.stderr}`);
    const proxy = await startProxy([`127.0.0.1:${await unusedPort()}`, '--', binary]);
    try {
      const warning = await proxy.waitForEvent((event) => event.event === 'program-not-listening', 30000);
      assert.match(String(warning.msg), /the bind\(\) shim is not loaded in it .*statically linked/);
    } finally {
      await proxy.stop();
    }
  });
});
