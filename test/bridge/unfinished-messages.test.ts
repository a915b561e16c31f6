// The bound on unfinished client messages over all sessions: 100 clients each send all but the last KiB
// of a maximal message and stall. Without the bound the proxy held all of it (1.6 GiB with the default
// 16 MiB messages); with it, past --max-unfinished the session holding the most is closed with
// 1009, and the proxy's memory stays near the bound.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { handshakeRequest, maskedFrame } from '../../bench/wire.js';
import { type RunningProxy, startProxy } from '../helpers/proxy.js';
import { RawConnection } from '../helpers/raw-connection.js';
import { startEchoServer, type TestServer } from '../helpers/targets.js';
import { waitUntil } from '../helpers/wait.js';
import { memoryOf, sleep } from './support.js';

const MiB = 1024 * 1024;
const SESSIONS = 100;
const MAX_MESSAGE = 4 * MiB;
const BOUND = 16 * MiB;

test('100 sessions each holding most of a maximal message: the largest are closed with 1009, memory stays bounded', {
  timeout: 120_000,
}, async () => {
  let target: TestServer | undefined;
  let proxy: RunningProxy | undefined;
  const clients: RawConnection[] = [];
  try {
    target = await startEchoServer();
    proxy = await startProxy([
      '--max-message-size',
      String(MAX_MESSAGE),
      '--max-unfinished',
      String(BOUND),
      '127.0.0.1:0',
      `127.0.0.1:${target.port}`,
    ]);
    const pid = proxy.proc.pid!;
    for (let i = 0; i < SESSIONS; i++) {
      const conn = await RawConnection.open(proxy.port!);
      conn.write(handshakeRequest({ protocol: 'binary' }));
      assert.equal((await conn.head())?.status, 101);
      clients.push(conn);
    }
    const running = proxy;
    await waitUntil('every session open', () => running.events().filter((e) => e.event === 'open').length === SESSIONS);
    const before = memoryOf(pid).rss;
    // One frame of the largest size, all but its last KiB: the message can never complete.
    const partial = maskedFrame(Buffer.alloc(MAX_MESSAGE, 1)).subarray(0, -1024);
    await Promise.all(
      clients.map(
        (conn) =>
          new Promise<void>((resolve) => {
            conn.socket.write(partial, () => resolve());
            conn.socket.once('close', () => resolve());
          }),
      ),
    );
    // What is left unread of the closed sessions' messages is the kernel's; let the proxy settle.
    await sleep(1000);
    const { peak } = memoryOf(pid);
    // 100 x 4 MiB held would be 400 MiB; the bound is 16 MiB (the rest: read buffers and garbage not yet collected).
    const grown = (peak - before) / MiB;
    assert.ok(grown < 100, `the proxy's peak memory grew by ${grown.toFixed(0)} MiB`);
    const closes = running.events().filter((e) => e.event === 'close');
    const dropped = closes.filter((e) => e.code === 1009 && e.initiator === 'proxy');
    // Four messages of 4 MiB less a KiB fit in 16 MiB: the others went.
    assert.ok(dropped.length >= SESSIONS - BOUND / MAX_MESSAGE, `${dropped.length} sessions closed with 1009`);
    assert.match(String(dropped[0]!.reason), /Unfinished messages of all sessions above 16777216 bytes/);
    // A dropped client saw the close frame's code.
    const seen = await Promise.all(clients.map((conn) => conn.frames(2000)));
    assert.ok(
      seen.some((frames) => frames.closeCode === 1009),
      'no client saw 1009',
    );
  } finally {
    for (const conn of clients) conn.destroy();
    await proxy?.stop();
    await target?.close();
  }
});
