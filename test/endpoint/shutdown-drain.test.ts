// A graceful stop (SIGTERM) loses nothing a target had already sent: bytes still unread in the kernel,
// held back because the client was slow, reach the client before its 1001.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import type { WebSocket } from 'ws';
import { sha256, sleep } from '../bridge/support.js';
import { type RunningProxy, startProxy } from '../helpers/proxy.js';
import { startServer, type TestServer } from '../helpers/targets.js';
import { collect, openClient } from '../helpers/ws-client.js';

const SESSIONS = 10;
const BYTES = 8 * 1024 * 1024;

test('SIGTERM: every byte each target wrote before it reaches the client, then 1001', { timeout: 90_000 }, async () => {
  const payload = randomBytes(BYTES);
  let written = 0;
  let target: TestServer | undefined;
  let proxy: RunningProxy | undefined;
  const clients: WebSocket[] = [];
  try {
    // Writes its bytes at once, then neither writes nor closes.
    target = await startServer((socket) => {
      socket.write(payload, () => written++);
    });
    proxy = await startProxy(['--shutdown-timeout', '20', '127.0.0.1:0', `127.0.0.1:${target.port}`]);
    const results: Array<ReturnType<typeof collect>> = [];
    for (let i = 0; i < SESSIONS; i++) {
      const ws = await openClient(proxy.url, ['binary']);
      results.push(collect(ws));
      // A client that stops reading: the proxy has to hold its target back, so the bytes wait in the kernel.
      ws.pause();
      clients.push(ws);
    }
    await sleep(1000);
    const stopped = proxy.stop('SIGTERM');
    await sleep(500);
    for (const ws of clients) ws.resume();
    const received = await Promise.all(results);
    for (const [i, result] of received.entries()) {
      assert.equal(result.data.length, BYTES, `session ${i}: ${result.data.length} of ${BYTES} bytes`);
      assert.equal(sha256(result.data), sha256(payload), `session ${i}: the bytes differ`);
      assert.equal(result.code, 1001, `session ${i}`);
    }
    assert.equal((await stopped).code, 0);
    assert.equal(written, SESSIONS, 'each target handed all its bytes to the kernel');
  } finally {
    for (const ws of clients) ws.terminate();
    await proxy?.stop();
    await target?.close();
  }
});
