import assert from 'node:assert/strict';
import net from 'node:net';
import { afterEach, test } from 'node:test';
import type { ClientOptions, WebSocket } from 'ws';
import { type RunningProxy, startProxy } from '../helpers/proxy.js';
import { startEchoServer, startServer, type TestServer } from '../helpers/targets.js';
import { waitUntil } from '../helpers/wait.js';
import { collect, echoed, openClient } from '../helpers/ws-client.js';

// Whatever a test starts is registered here and stopped after it, pass or fail.
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
async function proxy(args: string[]): Promise<RunningProxy> {
  const running = await startProxy(args);
  cleanups.push(() => running.stop('SIGKILL'));
  return running;
}
async function echo(): Promise<TestServer> {
  const server = await startEchoServer();
  cleanups.push(() => server.close());
  return server;
}
async function client(url: string, options: ClientOptions = {}): Promise<WebSocket> {
  const ws = await openClient(url, ['binary'], options);
  cleanups.push(() => ws.terminate());
  return ws;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Asserts that the proxy accepts no new connection. The kernel may give the freed port to another test's
 * process at once, so the proof is the proxy's own log (needs -v for its 'accept' events), not the refusal.
 */
async function assertNotAccepting(p: RunningProxy): Promise<void> {
  const accepted = (): number => p.events().filter((e) => e.event === 'accept').length;
  const before = accepted();
  assert.ok(before > 0, 'the proxy must run with -v so that accepts are logged');
  const socket = net.connect(p.port!, '127.0.0.1');
  socket.on('error', () => undefined);
  // Not events.once: it would reject on the refusal's 'error'.
  await new Promise((resolve) => {
    socket.once('close', resolve);
    setTimeout(resolve, 500);
  });
  socket.destroy();
  assert.equal(accepted(), before, 'the proxy accepted a connection');
}

/** True while the process has not exited. */
function running(p: RunningProxy): boolean {
  return p.proc.exitCode === null && p.proc.signalCode === null;
}

test('--run-once: serves one session, refuses a second client, exits 0 when the session ends', async () => {
  const target = await echo();
  const p = await proxy(['-v', '--run-once', '127.0.0.1:0', `127.0.0.1:${target.port}`]);
  const first = await client(p.url);
  assert.equal(await echoed(first, 'only one'), 'only one');
  // The listener closed when the first session started.
  await assertNotAccepting(p);
  assert.ok(running(p), 'exited while the session was open');
  first.close(1000);
  const status = await p.exited;
  assert.equal(status.code, 0, p.stderr());
  assert.equal(p.events().filter((e) => e.event === 'open').length, 1);
  assert.ok(p.events().some((e) => e.event === 'stopped'));
});

test('--timeout, idle at the deadline: exits 0', async () => {
  const target = await echo();
  const p = await proxy(['--timeout', '0.5', '127.0.0.1:0', `127.0.0.1:${target.port}`]);
  const status = await p.exited;
  assert.equal(status.code, 0, p.stderr());
  assert.ok(p.events().some((e) => e.event === 'timeout'));
  assert.match(String(p.events().find((e) => e.event === 'stopping')!.reason), /--timeout/);
});

test('--timeout with a session open at the deadline: no new connections, exits only after the session closes', async () => {
  const target = await echo();
  const p = await proxy(['-v', '--timeout', '1', '127.0.0.1:0', `127.0.0.1:${target.port}`]);
  const ws = await client(p.url);
  await p.waitForEvent((e) => e.event === 'timeout');
  await assertNotAccepting(p);
  assert.ok(running(p), 'exited with a session open');
  // The open session still works after the deadline.
  assert.equal(await echoed(ws, 'after the deadline'), 'after the deadline');
  ws.close(1000);
  const status = await p.exited;
  assert.equal(status.code, 0, p.stderr());
  const close = p.events().findIndex((e) => e.event === 'close');
  const stopping = p.events().findIndex((e) => e.event === 'stopping');
  assert.ok(close >= 0 && stopping > close, 'stopped before the session closed');
});

test('--idle-timeout without sessions: exits 0', async () => {
  const target = await echo();
  const p = await proxy(['--idle-timeout', '0.5', '127.0.0.1:0', `127.0.0.1:${target.port}`]);
  const status = await p.exited;
  assert.equal(status.code, 0, p.stderr());
  assert.match(String(p.events().find((e) => e.event === 'stopping')!.reason), /--idle-timeout/);
});

test('--idle-timeout: a session in progress postpones it; the countdown restarts when it ends', async () => {
  const target = await echo();
  const p = await proxy(['--idle-timeout', '1.5', '127.0.0.1:0', `127.0.0.1:${target.port}`]);
  const ws = await client(p.url);
  // Held for twice the idle timeout: the proxy must stay.
  await sleep(3000);
  assert.ok(running(p), 'exited during a session');
  assert.equal(await echoed(ws, 'still served'), 'still served');
  ws.close(1000);
  await p.waitForEvent((e) => e.event === 'close');
  // A new client is welcome during the restarted countdown.
  const again = await client(p.url);
  assert.equal(await echoed(again, 'again'), 'again');
  again.close(1000);
  const status = await p.exited;
  assert.equal(status.code, 0, p.stderr());
  assert.equal(p.events().filter((e) => e.event === 'close').length, 2);
  assert.match(String(p.events().find((e) => e.event === 'stopping')!.reason), /--idle-timeout/);
});

test('--heartbeat: pings arrive every interval; a client that answers stays connected', async () => {
  const target = await echo();
  const p = await proxy(['--heartbeat', '0.5', '127.0.0.1:0', `127.0.0.1:${target.port}`]);
  const ws = await client(p.url);
  let pings = 0;
  ws.on('ping', () => pings++);
  // By the third ping a client that did not answer the first would have been dropped (see the next test).
  await waitUntil('three pings', () => pings >= 3);
  assert.equal(ws.readyState, ws.OPEN);
  assert.equal(await echoed(ws, 'alive'), 'alive');
  assert.ok(!p.events().some((e) => e.event === 'heartbeat-timeout'));
});

test('--heartbeat: a client that does not answer pings is dropped and the log says so', async () => {
  const target = await echo();
  const p = await proxy(['--heartbeat', '0.5', '127.0.0.1:0', `127.0.0.1:${target.port}`]);
  const ws = await client(p.url, { autoPong: false });
  let pings = 0;
  ws.on('ping', () => pings++);
  const closed = collect(ws);
  const dropped = await p.waitForEvent((e) => e.event === 'heartbeat-timeout');
  const result = await closed;
  assert.ok(pings >= 1, 'dropped without having been pinged');
  assert.equal(result.code, 1006, 'dropped without a close frame');
  const close = await p.waitForEvent((e) => e.event === 'close' && e.conn === dropped.conn);
  assert.match(String(close.reason), /[Hh]eartbeat/);
  assert.ok(running(p), 'the proxy itself must keep running');
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal}: open WebSockets get 1001, the process exits 0`, async () => {
    const target = await echo();
    const p = await proxy(['127.0.0.1:0', `127.0.0.1:${target.port}`]);
    const a = await client(p.url);
    const b = await client(p.url);
    const closedA = collect(a);
    const closedB = collect(b);
    assert.equal(await echoed(a, 'a'), 'a');
    const status = await p.stop(signal);
    assert.equal(status.code, 0, p.stderr());
    for (const closed of [await closedA, await closedB]) {
      assert.equal(closed.code, 1001);
      assert.equal(closed.reason, 'Server shutting down');
    }
    assert.equal(p.events().filter((e) => e.event === 'close').length, 2);
  });
}

test('SIGTERM flushes what is in flight: the client receives every byte the proxy took from the target, then 1001', async () => {
  const size = 4 * 1024 * 1024;
  const pattern = Buffer.alloc(size);
  for (let i = 0; i < size; i++) pattern[i] = i % 251;
  // More than the socket buffers hold: part of it waits inside the proxy when the signal comes.
  const target = await startServer((socket) => socket.write(pattern));
  cleanups.push(() => target.close());
  const p = await proxy(['127.0.0.1:0', `127.0.0.1:${target.port}`]);
  const ws = await client(p.url);
  ws.pause();
  await p.waitForEvent((e) => e.event === 'open');
  await sleep(500);
  const received = collect(ws);
  const status = p.stop('SIGTERM');
  await p.waitForEvent((e) => e.event === 'stopping');
  ws.resume();
  const result = await received;
  assert.equal((await status).code, 0, p.stderr());
  assert.equal(result.code, 1001);
  assert.ok(result.data.length > 0, 'nothing was delivered');
  assert.ok(result.data.equals(pattern.subarray(0, result.data.length)), 'the bytes delivered are not the start of the stream');
  const close = p.events().find((e) => e.event === 'close')!;
  assert.equal(close.code, 1001);
  assert.equal(close.bytesFromTarget, result.data.length, 'bytes the proxy read from the target did not reach the client');
});

test('--shutdown-timeout: a client that never answers the close frame is cut, and the process still exits 0', async () => {
  const target = await echo();
  const p = await proxy(['-v', '--shutdown-timeout', '1', '127.0.0.1:0', `127.0.0.1:${target.port}`]);
  const ws = await client(p.url);
  const closed = collect(ws);
  // A paused client reads nothing more, so it never sees (or answers) the close frame.
  ws.pause();
  const status = p.stop('SIGTERM');
  const stopping = await p.waitForEvent((e) => e.event === 'stopping');
  // While it waits, the proxy accepts no one.
  await assertNotAccepting(p);
  assert.equal((await status).code, 0, p.stderr());
  ws.resume();
  const result = await closed;
  assert.notEqual(result.code, 1000);
  const cut = p.events().find((e) => e.event === 'close');
  assert.ok(cut, 'no close log line');
  assert.ok(p.events().some((e) => e.event === 'stopped'));
  // It did wait for the client, then cut it: a lower bound, measured by the proxy's own log times (this
  // process may read the log late on a busy machine).
  const waited = new Date(cut.time as string).getTime() - new Date(stopping.time as string).getTime();
  assert.ok(waited >= 800, `the proxy cut the client ${waited} ms after stopping, before the shutdown timeout`);
});
