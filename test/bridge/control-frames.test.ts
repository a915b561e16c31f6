// Control frames and fragments a client may send in bulk or malformed, on the wire: a burst of pings is
// answered (not a dropped connection), a close reason that is not UTF-8 fails the connection with 1007
// (RFC 6455 section 8.1), and a message in more fragments than the documented limit gets 1008.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { handshakeRequest, maskedFrame, Opcode, parseFrame } from '../../bench/wire.js';
import { cliFixture } from '../helpers/cli-fixture.js';
import { type RunningProxy, startProxy } from '../helpers/proxy.js';
import { RawConnection } from '../helpers/raw-connection.js';
import { startServer } from '../helpers/targets.js';
import { waitUntil } from '../helpers/wait.js';

/** The proxy to the fixture's echo target that the tests share. */
let proxy: RunningProxy;
const cli = cliFixture('control-frames', {
  async before() {
    proxy = await cli.proxy([]);
  },
});

/** A raw client past its 101, with the binary subprotocol. */
async function openRaw(): Promise<RawConnection> {
  const conn = await RawConnection.open(proxy.port!);
  conn.write(handshakeRequest({ protocol: 'binary' }));
  const head = await conn.head();
  assert.equal(head?.status, 101);
  return conn;
}

/** Every whole frame the server has sent so far. */
function framesOf(conn: RawConnection): Array<{ opcode: number; payload: Buffer }> {
  const frames: Array<{ opcode: number; payload: Buffer }> = [];
  const buffer = conn.received;
  let at = buffer.indexOf('\r\n\r\n') + 4;
  for (;;) {
    const frame = parseFrame(buffer, at);
    if (!frame) return frames;
    frames.push(frame);
    at = frame.next;
  }
}

/** The close frame a session ended with, as its log event says. */
function closeEvent(conn: number): Record<string, unknown> | undefined {
  return proxy.events().find((e) => e.event === 'close' && e.conn === conn);
}

function connOf(path: string): number {
  const open = [...proxy.events()].reverse().find((e) => e.event === 'open' && e.path === path);
  assert.ok(open, `no open event for ${path}`);
  return open.conn as number;
}

describe('control frames', () => {
  test('200 pings in one write: each answered with its pong, and the session carries on', async () => {
    const conn = await openRaw();
    try {
      const pings = Array.from({ length: 200 }, (_, i) => maskedFrame(Buffer.from(`ping ${i}`), Opcode.PING));
      conn.write(Buffer.concat([...pings, maskedFrame(Buffer.from('after the pings'))]));
      const frames = await waitUntil('the echo after the pings', () => {
        const seen = framesOf(conn);
        return seen.some((f) => f.opcode === Opcode.BINARY) && seen;
      });
      const pongs = frames.filter((f) => f.opcode === Opcode.PONG).map((f) => f.payload.toString());
      // RFC 6455 5.5.3 allows answering only the latest of several pings; every ping here fits at once.
      assert.deepEqual(
        pongs,
        Array.from({ length: 200 }, (_, i) => `ping ${i}`),
      );
      assert.equal(Buffer.concat(frames.filter((f) => f.opcode === Opcode.BINARY).map((f) => f.payload)).toString(), 'after the pings');
      assert.ok(!framesOf(conn).some((f) => f.opcode === Opcode.CLOSE), 'the session is still open');
    } finally {
      conn.destroy();
    }
  });

  test('5,000 pings from a client that does not read: the queue of pongs stops at the high-water mark, the latest is answered once it reads, and the session carries on', async () => {
    const size = 8 * 1024 * 1024;
    // A target that sends more than the sockets between hold, and stays open.
    const streamer = await startServer((socket) => socket.write(Buffer.alloc(size, 5)));
    const streaming = await startProxy(['127.0.0.1:0', `127.0.0.1:${streamer.port}`]);
    const conn = await RawConnection.open(streaming.port!);
    try {
      conn.write(handshakeRequest({ protocol: 'binary' }));
      assert.equal((await conn.head())?.status, 101);
      conn.socket.pause();
      // The proxy's queue towards this client fills up past its high-water mark.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      // 5,000 pongs of 125 bytes are more than the high-water mark (256 KiB) the proxy queues for a client.
      const pings = Array.from({ length: 5000 }, (_, i) => maskedFrame(Buffer.from(`ping ${i} `.padEnd(125, '.')), Opcode.PING));
      conn.write(Buffer.concat(pings));
      await new Promise((resolve) => setTimeout(resolve, 500));
      conn.socket.resume();
      const frames = await waitUntil('all the data and a pong', () => {
        const seen = framesOf(conn);
        const data = seen.filter((f) => f.opcode === Opcode.BINARY).reduce((sum, f) => sum + f.payload.length, 0);
        return data === size && seen.some((f) => f.opcode === Opcode.PONG) && seen;
      });
      const pongs = frames.filter((f) => f.opcode === Opcode.PONG).map((f) => f.payload.toString());
      assert.equal(pongs.at(-1), 'ping 4999 '.padEnd(125, '.'), 'the latest ping is answered');
      assert.ok(pongs.length < 5000, `all ${pongs.length} pongs were queued for a client that did not read`);
      assert.ok(!frames.some((f) => f.opcode === Opcode.CLOSE), 'the session is still open');
    } finally {
      conn.destroy();
      await streaming.stop();
      await streamer.close();
    }
  });

  test('a close reason that is not UTF-8: the connection fails with 1007, the reason is not echoed', async () => {
    const conn = await openRaw();
    try {
      const payload = Buffer.concat([Buffer.from([0x03, 0xe8]), Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe])]);
      conn.write(maskedFrame(payload, Opcode.CLOSE));
      const seen = await conn.frames(10_000, false);
      assert.equal(seen.closeCode, 1007);
      assert.ok(!conn.received.includes(Buffer.from([0xff, 0xfe])), 'the invalid bytes came back');
    } finally {
      conn.destroy();
    }
  });
});

describe('fragments', () => {
  /** Sends one binary message of `count` fragments of one byte each; resolves with what the client saw. */
  async function fragmented(count: number, path: string): Promise<{ code: number | undefined; echoed: number; conn: number }> {
    const conn = await RawConnection.open(proxy.port!);
    try {
      conn.write(handshakeRequest({ protocol: 'binary', path }));
      assert.equal((await conn.head())?.status, 101);
      const frames: Buffer[] = [];
      for (let i = 0; i < count; i++) {
        const frame = maskedFrame(Buffer.from([i & 0xff]), i === 0 ? Opcode.BINARY : Opcode.CONTINUATION);
        if (i < count - 1) frame[0]! &= 0x7f; // not FIN: more fragments follow
        frames.push(frame);
      }
      conn.write(Buffer.concat(frames));
      const echoed = await conn.data(count, 10_000);
      conn.write(maskedFrame(Buffer.from([0x03, 0xe8]), Opcode.CLOSE));
      const seen = await conn.frames(10_000, false);
      return { code: seen.closeCode, echoed: echoed.length, conn: connOf(path) };
    } finally {
      conn.destroy();
    }
  }

  test('a message of 16,384 fragments is carried whole', async () => {
    const result = await fragmented(16_384, '/fragments-at-limit');
    assert.equal(result.echoed, 16_384);
    assert.equal(result.code, 1000);
  });

  test('a message of 16,385 fragments: close 1008 with a reason, logged as the proxy closing', async () => {
    const result = await fragmented(16_385, '/fragments-over-limit');
    assert.equal(result.echoed, 0);
    assert.equal(result.code, 1008);
    const event = await waitUntil('the close line', () => closeEvent(result.conn));
    assert.equal(event.code, 1008);
    assert.equal(event.initiator, 'proxy');
    assert.match(String(event.reason), /16384 fragments/);
  });
});
