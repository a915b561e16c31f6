// A client that leaves while its target is not reading: the proxy has paused the client (the target's
// backlog is above the high-water mark), so the client's FIN is never read. The proxy must still notice
// that it has gone, and free the session: the target then gets its linger and close.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { test } from 'node:test';
import type { WebSocket } from 'ws';
import { type RunningProxy, startProxy } from '../helpers/proxy.js';
import { startServer, type TestServer } from '../helpers/targets.js';
import { waitUntil } from '../helpers/wait.js';
import { openClient } from '../helpers/ws-client.js';

const SESSIONS = 20;

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** Sends until the proxy stops reading: for half a second, nothing of the client's queue drains. */
async function sendUntilPaused(ws: WebSocket): Promise<void> {
  const chunk = Buffer.alloc(256 * 1024, 7);
  const deadline = Date.now() + 30_000;
  for (;;) {
    while (ws.bufferedAmount < 4 * 1024 * 1024) ws.send(chunk);
    const before = ws.bufferedAmount;
    await new Promise((resolve) => setTimeout(resolve, 500));
    if (ws.bufferedAmount === before) return;
    assert.ok(Date.now() < deadline, 'the proxy never held the client back');
  }
}

test('20 clients leave while their targets read nothing: sessions and descriptors are freed in seconds', { timeout: 60_000 }, async () => {
  let target: TestServer | undefined;
  let proxy: RunningProxy | undefined;
  const clients: WebSocket[] = [];
  try {
    // Reads nothing after Node's first 16 KiB, and never closes.
    target = await startServer((socket) => socket.pause());
    proxy = await startProxy(['127.0.0.1:0', `127.0.0.1:${target.port}`]);
    const pid = proxy.proc.pid!;
    const idleFds = openFds(pid);
    for (let i = 0; i < SESSIONS; i++) clients.push(await openClient(proxy.url, ['binary']));
    await Promise.all(clients.map(sendUntilPaused));
    assert.ok(openFds(pid) >= idleFds + 2 * SESSIONS, 'each session holds two descriptors');
    const left = Date.now();
    for (const ws of clients) ws.terminate();
    const running = proxy;
    await waitUntil(
      `all ${SESSIONS} sessions to end`,
      () => running.events().filter((e) => e.event === 'close').length === SESSIONS,
      20_000,
    );
    await waitUntil('the descriptors to be freed', () => openFds(pid) <= idleFds, 5_000);
    const closes = running.events().filter((e) => e.event === 'close');
    for (const close of closes) assert.equal(close.initiator, 'client');
    // Noticing takes a probe or two (a second apart), then the target's linger of 5 s.
    assert.ok(Date.now() - left < 20_000);
  } finally {
    for (const ws of clients) ws.terminate();
    await proxy?.stop();
    await target?.close();
  }
});
