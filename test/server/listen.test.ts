import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import dns from 'node:dns/promises';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, afterEach, test } from 'node:test';
import type { WebSocket } from 'ws';
import { CLI, LISTENING_STDIN_LAUNCHER, type RunningProxy, startProxy } from '../helpers/proxy.js';
import { startEchoServer, startServer, type TestServer } from '../helpers/targets.js';
import { waitUntil } from '../helpers/wait.js';
import { openClient } from '../helpers/ws-client.js';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'wsfy-listen-'));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

// Whatever a test starts is registered here and stopped after it, pass or fail.
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
async function proxy(args: string[]): Promise<RunningProxy> {
  const running = await startProxy(args);
  cleanups.push(() => running.stop());
  return running;
}
async function echo(host?: string): Promise<TestServer> {
  const server = await startEchoServer(host);
  cleanups.push(() => server.close());
  return server;
}

/** Sends `text` through a WebSocket at `url` and resolves with what came back; closes the client. */
async function roundTrip(url: string, text = 'ping through the proxy'): Promise<string> {
  const ws: WebSocket = await openClient(url, ['binary']);
  try {
    const reply = once(ws, 'message');
    ws.send(Buffer.from(text));
    const [data] = (await reply) as [Buffer];
    return data.toString();
  } finally {
    ws.close(1000);
    await once(ws, 'close');
  }
}

test('[host:]port: 127.0.0.1:0 listens on the port the kernel chose', async () => {
  const target = await echo();
  const running = await proxy(['127.0.0.1:0', `127.0.0.1:${target.port}`]);
  assert.ok(running.port! > 0);
  assert.equal(running.events().find((e) => e.event === 'listening')!.listen, `127.0.0.1:${running.port}`);
  assert.equal(await roundTrip(running.url), 'ping through the proxy');
  const opened = await running.waitForEvent((e) => e.event === 'open');
  assert.match(String(opened.client), /^127\.0\.0\.1:\d+$/);
  assert.equal(opened.target, `127.0.0.1:${target.port}`);
});

test('port alone listens on every interface: IPv4 and IPv6 clients, IPv4 logged without ::ffff:', async () => {
  const target = await echo();
  const running = await proxy(['0', `127.0.0.1:${target.port}`]);
  assert.match(String(running.events().find((e) => e.event === 'listening')!.listen), /^\*:\d+$/);
  assert.equal(await roundTrip(`ws://127.0.0.1:${running.port}`, 'v4'), 'v4');
  assert.equal(await roundTrip(`ws://[::1]:${running.port}`, 'v6'), 'v6');
  await running.waitForEvent((e) => e.event === 'close' && e.conn === 2);
  const clients = running
    .events()
    .filter((e) => e.event === 'open')
    .map((e) => String(e.client));
  assert.match(clients[0]!, /^127\.0\.0\.1:\d+$/);
  assert.match(clients[1]!, /^\[::1\]:\d+$/);
});

test('IPv6 literal [::1]:0: listens on ::1, a client connects over ::1', async () => {
  const target = await echo();
  const running = await proxy(['-v', '[::1]:0', `127.0.0.1:${target.port}`]);
  assert.equal(running.events().find((e) => e.event === 'listening')!.listen, `[::1]:${running.port}`);
  assert.equal(await roundTrip(`ws://[::1]:${running.port}`), 'ping through the proxy');
  const opened = await running.waitForEvent((e) => e.event === 'open');
  assert.match(String(opened.client), /^\[::1\]:\d+$/);
  // Only ::1 is bound: IPv4 loopback is not served. (Another process may own 127.0.0.1 on this port, so the
  // proof is that this proxy logs no new accept.)
  const accepts = running.events().filter((e) => e.event === 'accept').length;
  assert.equal(accepts, 1);
  const v4 = net.connect(running.port!, '127.0.0.1');
  v4.on('error', () => undefined);
  await new Promise((resolve) => {
    v4.once('close', resolve);
    setTimeout(resolve, 500);
  });
  v4.destroy();
  assert.equal(running.events().filter((e) => e.event === 'accept').length, accepts);
});

test('-6 with a host name listens on its IPv6 address first (IPv4 when the name has none)', async (t) => {
  const target = await echo();
  const addresses = await dns.lookup('localhost', { all: true });
  const expected = addresses.find((a) => a.family === 6) ?? addresses[0]!;
  if (expected.family !== 6) t.diagnostic('localhost has no IPv6 address here: only the IPv4 fallback is exercised');
  const running = await proxy(['-6', 'localhost:0', `127.0.0.1:${target.port}`]);
  const where = expected.family === 6 ? `[${expected.address}]:${running.port}` : `${expected.address}:${running.port}`;
  assert.equal(running.events().find((e) => e.event === 'listening')!.listen, where);
  assert.equal(await roundTrip(`ws://${where}`), 'ping through the proxy');
});

test('target host:port by name, and an IPv6 literal target [::1]:port', async () => {
  const v4 = await echo('127.0.0.1');
  const byName = await proxy(['127.0.0.1:0', `localhost:${v4.port}`]);
  assert.equal(await roundTrip(byName.url, 'by name'), 'by name');

  const v6 = await echo('::1');
  const literal = await proxy(['127.0.0.1:0', `[::1]:${v6.port}`]);
  assert.equal(await roundTrip(literal.url, 'over ::1'), 'over ::1');
  const opened = await literal.waitForEvent((e) => e.event === 'open');
  assert.equal(opened.target, `[::1]:${v6.port}`);
  // The target really saw a client from ::1.
  const seen: string[] = [];
  const watcher = await startServer((socket) => {
    seen.push(socket.remoteAddress ?? '');
    socket.pipe(socket);
  }, '::1');
  cleanups.push(() => watcher.close());
  const watched = await proxy(['127.0.0.1:0', `[::1]:${watcher.port}`]);
  assert.equal(await roundTrip(watched.url, 'seen'), 'seen');
  assert.deepEqual(seen, ['::1']);
});

test('--unix-target FILE: each WebSocket is connected to a real Unix socket server', async () => {
  const socketPath = path.join(scratch, 'target.sock');
  const received: string[] = [];
  const target = net.createServer((socket) => {
    socket.on('error', () => undefined);
    socket.on('data', (chunk: Buffer) => {
      received.push(chunk.toString());
      socket.write(`unix:${chunk.toString()}`);
    });
  });
  await new Promise<void>((resolve) => target.listen(socketPath, resolve));
  cleanups.push(() => new Promise((resolve) => target.close(resolve)));
  const running = await proxy(['127.0.0.1:0', '--unix-target', socketPath]);
  assert.equal(await roundTrip(running.url, 'hello'), 'unix:hello');
  assert.deepEqual(received, ['hello']);
  const opened = await running.waitForEvent((e) => e.event === 'open');
  assert.equal(opened.target, `unix:${socketPath}`);
});

test('--unix-listen FILE: a socket file of mode 0600 by default, served, and removed at exit', async () => {
  const target = await echo();
  const socketPath = path.join(scratch, 'default-mode.sock');
  const running = await proxy(['--unix-listen', socketPath, `127.0.0.1:${target.port}`]);
  assert.equal(running.events().find((e) => e.event === 'listening')!.listen, socketPath);
  const stat = fs.statSync(socketPath);
  assert.ok(stat.isSocket());
  assert.equal(stat.mode & 0o777, 0o600);
  assert.equal(await roundTrip(`ws+unix:${socketPath}:/`), 'ping through the proxy');
  const opened = await running.waitForEvent((e) => e.event === 'open');
  assert.equal(opened.client, 'unix-socket');
  const status = await running.stop();
  assert.equal(status.code, 0);
  assert.equal(fs.existsSync(socketPath), false, 'the socket file is left behind');
});

test('--unix-listen-mode sets the socket file mode', async () => {
  const target = await echo();
  for (const mode of ['0660', '666', '0640']) {
    const socketPath = path.join(scratch, `mode-${mode}.sock`);
    const running = await proxy(['--unix-listen', socketPath, '--unix-listen-mode', mode, `127.0.0.1:${target.port}`]);
    assert.equal(fs.statSync(socketPath).mode & 0o777, parseInt(mode, 8), `mode ${mode}`);
    assert.equal(await roundTrip(`ws+unix:${socketPath}:/`), 'ping through the proxy');
    await running.stop();
  }
});

test('--unix-listen replaces a stale socket file left by a process that is gone', async () => {
  const target = await echo();
  const socketPath = path.join(scratch, 'stale.sock');
  // Python binds and exits without unlinking: the file stays, nobody listens on it.
  const made = spawnSync('/usr/bin/python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', socketPath]);
  assert.equal(made.status, 0, String(made.stderr));
  assert.ok(fs.statSync(socketPath).isSocket());
  const refused = net.connect(socketPath);
  const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
  assert.equal(err.code, 'ECONNREFUSED');

  const running = await proxy(['--unix-listen', socketPath, `127.0.0.1:${target.port}`]);
  assert.equal(await roundTrip(`ws+unix:${socketPath}:/`), 'ping through the proxy');
  assert.equal(fs.statSync(socketPath).mode & 0o777, 0o600);
  await running.stop();
});

test('--inetd: the listening socket is fd 0, as inetd or systemd pass it', async () => {
  const target = await echo();
  // A helper binds 127.0.0.1:0, prints the port, moves the socket onto fd 0 and becomes the proxy.
  const script = LISTENING_STDIN_LAUNCHER;
  const proc = spawn(
    '/usr/bin/python3',
    ['-c', script, process.execPath, CLI, '--log-format', 'json', '--inetd', `127.0.0.1:${target.port}`],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const exited = once(proc, 'exit');
  cleanups.push(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
  });
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (t: string) => (stdout += t));
  proc.stderr.setEncoding('utf8').on('data', (t: string) => (stderr += t));
  await waitUntil('the listening line or an exit', () => stderr.includes('"listening"') || proc.exitCode !== null);
  const port = Number(stdout.split('\n')[0]);
  assert.ok(port > 0, `no port from the helper: ${stdout}`);
  const listening = JSON.parse(stderr.split('\n').find((line) => line.includes('"listening"'))!) as Record<string, unknown>;
  assert.equal(listening.listen, `127.0.0.1:${port}`);
  assert.equal(await roundTrip(`ws://127.0.0.1:${port}`, 'via inetd'), 'via inetd');
  proc.kill('SIGTERM');
  const [code] = (await exited) as [number | null];
  assert.equal(code, 0, stderr);
});
