// Byte-exact transfers through the real CLI in each subprotocol mode, each direction checked on its own
// (an upload sink, a download source) and both at once (an echo target).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { WebSocket } from 'ws';
import { type RunningProxy, startProxy } from '../helpers/proxy.js';
import { startEchoServer, type TestServer } from '../helpers/targets.js';
import { collect, openClient } from '../helpers/ws-client.js';
import { type Sink, type Source, sendAll, sha256, startSink, startSource } from './support.js';

const SIZE = 16 * 1024 * 1024;

/** A way of speaking to the proxy: what the client offers, and what it must get back. */
interface Mode {
  name: string;
  offered: string[] | undefined;
  /** The negotiated protocol as the client sees it ('' for none). */
  protocol: string;
  /** Payload travels as base64 in text frames. */
  base64: boolean;
}

const MODES: Mode[] = [
  { name: "'binary' offered", offered: ['binary'], protocol: 'binary', base64: false },
  { name: "only 'base64' offered", offered: ['base64'], protocol: 'base64', base64: true },
  { name: 'nothing offered', offered: undefined, protocol: '', base64: false },
];

/** Counts a client's incoming frames and bytes, and resolves `reached` once `size` bytes have come. */
function watch(ws: WebSocket, size: number): { chunks: Buffer[]; frames: { text: number; binary: number }; reached: Promise<void> } {
  const chunks: Buffer[] = [];
  const frames = { text: 0, binary: 0 };
  let bytes = 0;
  const reached = new Promise<void>((resolve, reject) => {
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (isBinary) frames.binary++;
      else frames.text++;
      const chunk = isBinary ? data : Buffer.from(data.toString('latin1'), 'base64');
      if (!isBinary) assert.equal(chunk.toString('base64'), data.toString('latin1'), 'a text frame that is not canonical base64');
      chunks.push(chunk);
      bytes += chunk.length;
      if (bytes >= size) resolve();
    });
    ws.once('close', (code: number) => reject(new Error(`closed (${code}) after ${bytes} of ${size} bytes`)));
  });
  return { chunks, frames, reached };
}

let echo: TestServer;
let sink: Sink;
let source: Source;

before(async () => {
  [echo, sink, source] = await Promise.all([startEchoServer(), startSink(), startSource(SIZE)]);
});
after(async () => {
  await Promise.all([echo.close(), sink.close(), source.close()]);
});

/** Runs `body` with a fresh proxy towards `port` and a client offering `mode`'s protocols; cleans both up. */
async function session(port: number, mode: Mode, body: (proxy: RunningProxy, ws: WebSocket) => Promise<void>): Promise<void> {
  const proxy = await startProxy(['127.0.0.1:0', `127.0.0.1:${port}`]);
  let ws: WebSocket | undefined;
  try {
    ws = await openClient(proxy.url, mode.offered);
    assert.equal(ws.protocol, mode.protocol);
    await body(proxy, ws);
  } finally {
    ws?.terminate();
    await proxy.stop();
  }
}

/** The proxy's 'close' log line for its only session. */
function closeEvent(proxy: RunningProxy): Promise<Record<string, unknown>> {
  return proxy.waitForEvent((event) => event.event === 'close');
}

for (const mode of MODES) {
  describe(mode.name, () => {
    test(`echo: ${SIZE} random bytes come back byte-exact, protocol '${mode.protocol}', ${mode.base64 ? 'text' : 'binary'} frames`, async () => {
      await session(echo.port, mode, async (proxy, ws) => {
        const data = randomBytes(SIZE);
        const incoming = watch(ws, SIZE);
        await sendAll(ws, data, { base64: mode.base64 });
        await incoming.reached;
        const closed = collect(ws);
        ws.close(1000);
        const result = await closed;
        assert.equal(result.code, 1000);
        const received = Buffer.concat(incoming.chunks);
        assert.equal(received.length, SIZE);
        assert.ok(received.equals(data), 'echoed bytes differ from those sent');
        if (mode.base64) assert.equal(incoming.frames.binary, 0, 'binary frames in base64 mode');
        else assert.equal(incoming.frames.text, 0, 'text frames in binary mode');
        const event = await closeEvent(proxy);
        assert.equal(event.bytesFromClient, SIZE);
        assert.equal(event.bytesFromTarget, SIZE);
      });
    });

    test(`upload: ${SIZE} random bytes reach a sink byte-exact, then its FIN`, async () => {
      await session(sink.port, mode, async (proxy, ws) => {
        const data = randomBytes(SIZE);
        const closed = collect(ws);
        await sendAll(ws, data, { base64: mode.base64 });
        ws.close(1000);
        const got = await sink.nextResult();
        assert.equal(got.bytes, SIZE);
        assert.equal(got.sha256, sha256(data));
        const result = await closed;
        assert.equal(result.code, 1000);
        assert.equal(result.data.length, 0, 'the sink sent nothing, yet the client received data');
        const event = await closeEvent(proxy);
        assert.equal(event.bytesFromClient, SIZE);
        assert.equal(event.initiator, 'client');
      });
    });

    test(`download: ${SIZE} random bytes from a source arrive byte-exact, then close 1000`, async () => {
      await session(source.port, mode, async (proxy, ws) => {
        const incoming = watch(ws, SIZE);
        incoming.reached.catch(() => undefined); // the close is checked below
        const result = await collect(ws);
        const sent = await source.nextSent();
        assert.equal(result.code, 1000);
        assert.equal(result.reason, 'Target closed');
        const received = Buffer.concat(incoming.chunks);
        assert.equal(received.length, sent.bytes);
        assert.equal(sha256(received), sent.sha256);
        if (mode.base64) {
          assert.equal(incoming.frames.binary, 0, 'binary frames in base64 mode');
          assert.ok(incoming.frames.text > 0);
        } else {
          assert.equal(incoming.frames.text, 0, 'text frames in binary mode');
          assert.ok(incoming.frames.binary > 0);
        }
        const event = await closeEvent(proxy);
        assert.equal(event.bytesFromTarget, SIZE);
        assert.equal(event.initiator, 'target');
        assert.equal(event.code, 1000);
      });
    });
  });
}
