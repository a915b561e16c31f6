// Close semantics through the real CLI: whichever side ends first, everything it sent is delivered before
// the other side is told, and no session hangs on a leg that is gone.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type net from 'node:net';
import { describe, test } from 'node:test';
import type { WebSocket } from 'ws';
import { type RunningProxy, startProxy } from '../helpers/proxy.js';
import { startServer, type TestServer, unusedPort } from '../helpers/targets.js';
import { waitUntil } from '../helpers/wait.js';
import { collect, openClient } from '../helpers/ws-client.js';
import { readInBursts, sendAll, sendRandom, sha256, sleep, startSink, startSource, writeRandom } from './support.js';

const MiB = 1024 * 1024;

/** Runs `body` with a proxy in front of `target`; stops both afterwards, even on failure. */
async function withProxy<T extends TestServer>(target: T, body: (proxy: RunningProxy, target: T) => Promise<void>): Promise<void> {
  let proxy: RunningProxy | undefined;
  try {
    proxy = await startProxy(['127.0.0.1:0', `127.0.0.1:${target.port}`]);
    await body(proxy, target);
  } finally {
    await proxy?.stop();
    await target.close();
  }
}

/** Rejects when `promise` takes longer than `ms`: for the hangs these tests look for, not for speed. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Opens a client, runs `body`, and always drops the client afterwards. */
async function withClient(proxy: RunningProxy, body: (ws: WebSocket) => Promise<void>): Promise<void> {
  const ws = await openClient(proxy.url, ['binary']);
  try {
    await body(ws);
  } finally {
    ws.terminate();
  }
}

describe('target unreachable', () => {
  test('connection refused: close 1011 with a reason naming host:port', { timeout: 60_000 }, async () => {
    const port = await unusedPort();
    const proxy = await startProxy(['127.0.0.1:0', `127.0.0.1:${port}`]);
    try {
      await withClient(proxy, async (ws) => {
        const result = await collect(ws);
        assert.equal(result.code, 1011);
        assert.ok(result.reason.includes(`127.0.0.1:${port}`), `reason '${result.reason}' does not name the target`);
        assert.match(result.reason, /ECONNREFUSED/);
      });
    } finally {
      await proxy.stop();
    }
  });
});

describe('the target closes first', () => {
  test('a target sending several MiB then FIN: the client gets exactly those bytes, then 1000 "Target closed", 50 times in a row', {
    timeout: 60_000,
  }, async () => {
    // Sizes vary so that the tail lands at every offset of a read and of a frame.
    const source = await startSource(() => 3 * MiB + Math.floor(Math.random() * MiB));
    await withProxy(source, async (proxy) => {
      for (let round = 0; round < 50; round++) {
        await withClient(proxy, async (ws) => {
          const result = await collect(ws);
          const sent = await source.nextSent();
          assert.equal(result.data.length, sent.bytes, `round ${round}: byte count`);
          assert.equal(sha256(result.data), sent.sha256, `round ${round}: content`);
          assert.equal(result.code, 1000, `round ${round}`);
          assert.equal(result.reason, 'Target closed', `round ${round}`);
        });
      }
      // Every session ended as the target closing normally (the last log line may trail the client's close).
      await waitUntil('the 50th close log line', () => proxy.events().filter((e) => e.event === 'close').length === 50);
      for (const event of proxy.events().filter((e) => e.event === 'close')) {
        assert.equal(event.code, 1000);
        assert.equal(event.initiator, 'target');
      }
    });
  });

  // The client reads nothing until the source has written everything and its FIN (or, for sizes beyond
  // what the sockets can hold, until the pipe is full), then reads in slow bursts. Depending on the size the
  // proxy reads the FIN while the tail waits in its kernel send queue, in its own queue (on Linux loopback
  // around 4 MiB: the send buffer grows to 4 MiB, the proxy holds up to 256 KiB more without pausing the
  // target), or only after the client caught up. In every case the close must come after the last byte.
  const SLOW_SIZES = [64 * 1024, 300 * 1024, 2 * MiB, 3.5 * MiB, 3.75 * MiB, 4 * MiB, 4.25 * MiB, 4.5 * MiB, 5 * MiB, 24 * MiB];
  for (const size of SLOW_SIZES) {
    test(`a slow client, ${size} bytes: every byte, then 1000`, { timeout: 60_000 }, async () => {
      const source = await startSource(size);
      await withProxy(source, async (proxy) => {
        await withClient(proxy, async (ws) => {
          ws.pause();
          const closed = collect(ws);
          const sending = source.nextSent();
          await Promise.race([sending, sleep(1000)]);
          await sleep(100);
          readInBursts(ws, 64 * 1024, 5);
          ws.resume();
          const result = await closed;
          const sent = await sending;
          assert.equal(result.data.length, size);
          assert.equal(sha256(result.data), sent.sha256);
          assert.equal(result.code, 1000);
          assert.equal(result.reason, 'Target closed');
        });
      });
    });
  }

  test('a target that resets while the client is paused by backpressure: the client gets 1011 promptly', { timeout: 60_000 }, async () => {
    // The target never reads, so the proxy pauses the client; then it drops the connection. The proxy must
    // read the client again, or the client's close reply sits unread until ws's 30 s close timer.
    const target = await startServer((socket) => socket.pause());
    await withProxy(target, async (proxy) => {
      await withClient(proxy, async (ws) => {
        const closed = collect(ws);
        const socket = await target.nextConnection();
        void sendRandom(ws, 1024 * MiB).catch(() => undefined);
        // The pipe fills: the target's window, the proxy's queue past its high-water mark (the proxy stops
        // reading the client), the proxy's receive window, the client's send buffer. Then the client's
        // backlog (above zero: sendRandom waits for a write that cannot complete) stops changing for good.
        // It must stay unchanged for a whole second: while kernel buffers still grow (autotuning) or the
        // proxy waits for a core, the backlog can pause for a moment and then move on.
        let backlog = -1;
        let unchangedSince = Date.now();
        await waitUntil('the client to be held back for a second', () => {
          if (ws.bufferedAmount !== backlog || backlog === 0) {
            backlog = ws.bufferedAmount;
            unchangedSince = Date.now();
          }
          return Date.now() - unchangedSince >= 1000;
        });
        socket.destroy();
        const result = await within(closed, 10_000, 'the client close');
        assert.equal(result.code, 1011);
        assert.match(result.reason, /ECONNRESET|EPIPE/);
        await within(
          proxy.waitForEvent((e) => e.event === 'close'),
          10_000,
          "the proxy's close log line",
        );
      });
    });
  });
});

describe('the client closes first', () => {
  test('every byte the client sent reaches the target, then a FIN that leaves the target writable (10 rounds)', {
    timeout: 60_000,
  }, async () => {
    const sink = await startSink();
    await withProxy(sink, async (proxy) => {
      for (let round = 0; round < 10; round++) {
        await withClient(proxy, async (ws) => {
          const data = randomBytes(4 * MiB + Math.floor(Math.random() * MiB));
          const closed = collect(ws);
          // Close right after the last send, with most of the data still on its way.
          await sendAll(ws, data);
          ws.close(1000, 'done');
          const got = await sink.nextResult();
          assert.equal(got.bytes, data.length, `round ${round}: byte count`);
          assert.equal(got.sha256, sha256(data), `round ${round}: content`);
          assert.ok(got.writableAtEnd, `round ${round}: the target's socket was not writable at the proxy's FIN (not a half-close)`);
          assert.equal((await closed).code, 1000);
        });
      }
      await waitUntil('the 10th close log line', () => proxy.events().filter((e) => e.event === 'close').length === 10);
      const closes = proxy.events().filter((e) => e.event === 'close');
      for (const event of closes) {
        assert.equal(event.initiator, 'client');
        assert.equal(event.code, 1000);
        assert.equal(event.reason, 'done');
      }
    });
  });

  test('a slow target still gets every byte before the FIN, though the client closed at once', { timeout: 60_000 }, async () => {
    const sink = await startSink({ burstBytes: 256 * 1024, pauseMs: 5 });
    await withProxy(sink, async (proxy) => {
      await withClient(proxy, async (ws) => {
        const data = randomBytes(24 * MiB);
        const closed = collect(ws);
        await sendAll(ws, data);
        ws.close(1000);
        const got = await sink.nextResult();
        assert.equal(got.bytes, data.length);
        assert.equal(got.sha256, sha256(data));
        assert.ok(got.writableAtEnd);
        assert.equal((await closed).code, 1000);
      });
    });
  });

  test('a target that reads slowly after the client left still gets every byte, however long it takes', { timeout: 60_000 }, async () => {
    // One 14 MiB message: the proxy writes it to the target at once, so the client's close is read and the
    // client is gone while most of it still waits in the proxy. At about 1.3 MB/s the target needs longer
    // than the 5 s the proxy gives a target that makes no progress: the proxy must tell slow from stuck.
    const sink = await startSink({ burstBytes: 100 * 1024, pauseMs: 75 });
    await withProxy(sink, async (proxy) => {
      await withClient(proxy, async (ws) => {
        const data = randomBytes(14 * MiB);
        const closed = collect(ws);
        ws.send(data);
        ws.close(1000);
        assert.equal((await closed).code, 1000);
        const got = await sink.nextResult();
        assert.equal(got.bytes, data.length);
        assert.equal(got.sha256, sha256(data));
      });
    });
  });

  test('the client drops while the target is paused by backpressure: the target gets a FIN and the session ends', {
    timeout: 60_000,
  }, async () => {
    // The target streams until it sees the proxy's FIN; the client reads nothing, then vanishes.
    let targetSent: Promise<unknown> | undefined;
    const sawEnd: Array<Promise<unknown>> = [];
    const target = await startServer((socket) => {
      socket.resume(); // read and discard, so that the proxy's FIN is seen
      const ended = once(socket, 'end');
      sawEnd.push(ended);
      targetSent = streamUntil(socket, ended);
    });
    await withProxy(target, async (proxy) => {
      const ws = await openClient(proxy.url, ['binary']);
      ws.pause();
      await waitUntil('the target connection', () => sawEnd.length === 1);
      await sleep(300);
      ws.terminate();
      await within(sawEnd[0]!, 10_000, "the target's end");
      await targetSent;
      const event = await within(
        proxy.waitForEvent((e) => e.event === 'close'),
        10_000,
        "the proxy's close log line",
      );
      assert.equal(event.initiator, 'client');
      assert.equal(event.code, 1006);
    });
  });

  test('a target that ignores the FIN is cut off after the linger time, and the session ends', { timeout: 60_000 }, async () => {
    const seen: Array<{ socket: net.Socket; ended: Promise<unknown> }> = [];
    const target = await startServer((socket) => {
      socket.resume();
      seen.push({ socket, ended: once(socket, 'end') });
    });
    await withProxy(target, async (proxy) => {
      await withClient(proxy, async (ws) => {
        await waitUntil('the target connection', () => seen.length === 1);
        const closed = collect(ws);
        ws.close(1000);
        await closed;
      });
      const { socket, ended } = seen[0]!;
      await within(ended, 10_000, "the proxy's FIN");
      assert.ok(socket.writable, 'the target leg was not half-closed');
      // The proxy gives the target 5 s to answer the FIN with its own, then drops the connection.
      const event = await within(
        proxy.waitForEvent((e) => e.event === 'close', 15_000),
        15_000,
        "the proxy's close log line",
      );
      assert.equal(event.initiator, 'client');
      assert.ok(Number(event.durationMs) >= 4000, `the session ended after ${String(event.durationMs)} ms, before the linger time`);
      // The target, having read our FIN, learns of the drop when it next writes.
      const failed = once(socket, 'error');
      const writeUntilFailure = setInterval(() => socket.write('late'), 20);
      try {
        await within(failed, 10_000, 'a write error on the dropped target connection');
      } finally {
        clearInterval(writeUntilFailure);
      }
    });
  });
});

/** Writes random data with backpressure until `stop` settles, then ends the socket. */
async function streamUntil(socket: net.Socket, stop: Promise<unknown>): Promise<void> {
  let stopped = false;
  void stop.then(() => (stopped = true));
  while (!stopped && socket.writable) {
    await writeRandom(socket, MiB).catch(() => undefined);
  }
  socket.end();
}
