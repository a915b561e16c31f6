// Readiness notification (systemd's Type=notify): the test listens on a Unix datagram socket (Debian's
// Python, as Node has none) named by NOTIFY_SOCKET, a path or an abstract name, and sees READY=1 once the
// proxy listens, STATUS= with the open sessions as they change, and STOPPING=1 on SIGTERM, each sent by
// the proxy's main process (systemd's default NotifyAccess=main), the primary with --workers.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { cliFixture } from '../helpers/cli-fixture.js';
import { ProxyPool } from '../helpers/proxy.js';
import { assertTools, skipWithout } from '../helpers/tools.js';
import { waitUntil } from '../helpers/wait.js';
import { echoed, openClient } from '../helpers/ws-client.js';

const PYTHON = '/usr/bin/python3';

/** Binds a Unix datagram socket (`@name`: abstract) and prints each datagram with its sender's pid as a JSON line. */
const LISTENER = `
import json, socket, struct, sys
name = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind('\\0' + name[1:] if name.startswith('@') else name)
print(json.dumps({'bound': name}), flush=True)
while True:
    data, ancillary, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = None
    for level, kind, value in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack('iII', value[:12])[0]
    print(json.dumps({'pid': pid, 'data': data.decode()}), flush=True)
`;

interface Notification {
  pid: number;
  data: string;
}

const pool = new ProxyPool();
const listeners = new Set<ChildProcess>();
const cli = cliFixture('notify', { after: () => pool.stopAll() });
after(() => {
  for (const listener of listeners) listener.kill();
});

/** Starts the listener on `name` and resolves once it is bound, with what it has received so far (growing). */
async function listen(name: string): Promise<Notification[]> {
  const proc = spawn(PYTHON, ['-c', LISTENER, name], { stdio: ['ignore', 'pipe', 'inherit'] });
  listeners.add(proc);
  const received: Notification[] = [];
  let bound = false;
  let pending = '';
  proc.stdout!.setEncoding('utf8').on('data', (text: string) => {
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) {
      const message = JSON.parse(line) as Notification & { bound?: string };
      if (message.bound) bound = true;
      else received.push(message);
    }
  });
  await waitUntil(`the notification socket ${name} to be bound`, () => bound);
  return received;
}

/** Waits for a notification whose text matches `pattern`, after the first `skip` ones. */
function notified(received: Notification[], pattern: RegExp, skip = 0): Promise<Notification> {
  return waitUntil(`a notification matching ${pattern}`, () => received.slice(skip).find((n) => pattern.test(n.data)));
}

describe('NOTIFY_SOCKET', { skip: skipWithout(PYTHON) }, () => {
  for (const [name, workers] of [
    ['a socket path, one process', []],
    ['an abstract name, --workers 2', ['--workers', '2']],
  ] as const) {
    test(`${name}: READY=1, STATUS= as sessions open and close, STOPPING=1, all from the main process`, async () => {
      assertTools(PYTHON);
      const socket = name.startsWith('an abstract') ? `@wsfy-notify-${process.pid}` : path.join(cli.scratch, 'notify.sock');
      const received = await listen(socket);
      const p = await pool.start([...workers, '127.0.0.1:0', `127.0.0.1:${cli.echoTarget.port}`], {
        env: { ...process.env, NOTIFY_SOCKET: socket },
      });
      const ready = await notified(received, /^READY=1$/m);
      assert.equal(ready.data, `READY=1\nSTATUS=0 sessions open; listening on 127.0.0.1:${p.port}`);
      const ws = await openClient(p.url);
      assert.equal(await echoed(ws, 'counted'), 'counted');
      await notified(received, /^STATUS=1 session open;/);
      ws.close();
      const closedAt = received.length;
      await notified(received, /^STATUS=0 sessions open;/, closedAt);
      await p.stop();
      const stopping = await notified(received, /^STOPPING=1$/);
      assert.equal(received.at(-1), stopping, 'nothing after STOPPING=1');
      for (const notification of received) assert.equal(notification.pid, p.proc.pid, `sent by the main process: ${notification.data}`);
    });
  }

  test('a drain: STOPPING=1 at SIGTERM, then the sessions it lets finish are counted down', async () => {
    assertTools(PYTHON);
    const socket = path.join(cli.scratch, 'drain.sock');
    const received = await listen(socket);
    const p = await pool.start(['--drain-timeout', '60', '127.0.0.1:0', `127.0.0.1:${cli.echoTarget.port}`], {
      env: { ...process.env, NOTIFY_SOCKET: socket },
    });
    await notified(received, /^READY=1$/m);
    const ws = await openClient(p.url);
    await notified(received, /^STATUS=1 session open; listening on /);
    p.proc.kill('SIGTERM');
    await notified(received, /^STOPPING=1$/);
    assert.equal(await echoed(ws, 'still draining'), 'still draining');
    ws.close();
    await notified(received, /^STATUS=0 sessions open; stopping$/);
    assert.deepEqual(await p.exited, { code: 0, signal: null });
  });

  test('a burst of sessions is a few STATUS updates (one per second at most), ending with the right count', async () => {
    assertTools(PYTHON);
    const socket = path.join(cli.scratch, 'burst.sock');
    const received = await listen(socket);
    const p = await pool.start(['127.0.0.1:0', `127.0.0.1:${cli.echoTarget.port}`], { env: { ...process.env, NOTIFY_SOCKET: socket } });
    await notified(received, /^READY=1$/m);
    const start = Date.now();
    const clients = await Promise.all(Array.from({ length: 20 }, () => openClient(p.url)));
    await notified(received, /^STATUS=20 sessions open;/);
    const seconds = (Date.now() - start) / 1000;
    const updates = received.filter((n) => n.data.startsWith('STATUS='));
    // The first at once, then at most one per second (however slow the machine made the burst).
    assert.ok(
      updates.length <= Math.floor(seconds) + 2,
      `${updates.length} updates in ${seconds} s: ${updates.map((n) => n.data).join(' | ')}`,
    );
    assert.ok(updates.length < 20, 'fewer updates than sessions');
    for (const ws of clients) ws.close();
    await p.stop();
  });

  test('--workers: a worker killed with a session open does not leave its session counted', async () => {
    assertTools(PYTHON);
    const socket = path.join(cli.scratch, 'killed.sock');
    const received = await listen(socket);
    const p = await pool.start(['--workers', '2', '127.0.0.1:0', `127.0.0.1:${cli.echoTarget.port}`], {
      env: { ...process.env, NOTIFY_SOCKET: socket },
    });
    await notified(received, /^READY=1$/m);
    const pids = p.events().find((e) => e.event === 'listening' && e.worker === undefined)?.pids as number[];
    const ws = await openClient(p.url);
    assert.equal(await echoed(ws, 'about to lose its worker'), 'about to lose its worker');
    const opened = await p.waitForEvent((e) => e.event === 'open');
    await notified(received, /^STATUS=1 session open;/);
    const at = received.length;
    process.kill(pids[Number(opened.worker) - 1]!, 'SIGKILL');
    await notified(received, /^STATUS=0 sessions open;/, at);
    ws.terminate();
    await p.stop();
  });

  test('a socket nobody listens on: one warning, and the proxy serves on', async () => {
    const socket = path.join(cli.scratch, 'nobody-here.sock');
    const p = await pool.start(['127.0.0.1:0', `127.0.0.1:${cli.echoTarget.port}`], { env: { ...process.env, NOTIFY_SOCKET: socket } });
    const warning = await p.waitForEvent((e) => e.event === 'notify-failed');
    assert.match(
      String(warning.msg),
      new RegExp(`cannot tell the service manager at ${socket} \\(READY=1\\): error 2 \\(no such socket\\)`),
    );
    for (let i = 0; i < 2; i++) {
      const ws = await openClient(p.url);
      assert.equal(await echoed(ws, 'served anyway'), 'served anyway');
      ws.close();
    }
    await p.stop();
    assert.equal(p.events().filter((e) => e.event === 'notify-failed').length, 1);
  });
});
