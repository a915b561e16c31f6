// The target's read buffers: one shared buffer for quiet targets, a buffer of its own for a streaming
// one whose bytes are lent to the client socket. The unit tests pin down when a session switches; the
// end-to-end test runs sessions side by side through the real CLI, alternating bursts and trickles
// towards fast and slow clients, so that a buffer overwritten too early would show as a wrong hash.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type net from 'node:net';
import { describe, test } from 'node:test';
import { setTimeout as sleep, setImmediate as tick } from 'node:timers/promises';
import type { WebSocket } from 'ws';
import {
  copyToBlock,
  MAX_OWN_BUFFERS,
  MAX_SPARE_COPY_BLOCKS,
  OWN_READ_BYTES,
  ownBuffersHeld,
  RECYCLED_COPY_BYTES,
  recycleCopy,
  SHARED_READ_BYTES,
  SMALL_READ_BYTES,
  TargetReads,
} from '../../src/bridge/target-reads.js';
import { startProxy } from '../helpers/proxy.js';
import { startServer } from '../helpers/targets.js';
import { openClient } from '../helpers/ws-client.js';
import { readInBursts } from './support.js';

const MiB = 1024 * 1024;

describe('copy blocks', () => {
  test("a copy holds the bytes in a block of the shared buffer's size; a block is used again only once given back", () => {
    const bytes = randomBytes(30_000);
    const first = copyToBlock(bytes);
    assert.deepEqual(first, bytes);
    assert.equal(first.buffer.byteLength, SHARED_READ_BYTES);
    const second = copyToBlock(randomBytes(5000));
    assert.notEqual(second.buffer, first.buffer, 'a block still in use was handed out again');
    recycleCopy(first);
    const third = copyToBlock(randomBytes(8000));
    assert.equal(third.buffer, first.buffer, 'the given-back block was not reused');
    recycleCopy(second);
    recycleCopy(third);
  });

  test(`at most ${MAX_SPARE_COPY_BLOCKS} spare blocks are kept`, () => {
    const copies = Array.from({ length: MAX_SPARE_COPY_BLOCKS + 10 }, () => copyToBlock(Buffer.alloc(RECYCLED_COPY_BYTES)));
    for (const copy of copies) recycleCopy(copy);
    const again = Array.from({ length: MAX_SPARE_COPY_BLOCKS + 10 }, () => copyToBlock(Buffer.alloc(RECYCLED_COPY_BYTES)));
    const reused = again.filter((copy) => copies.some((old) => old.buffer === copy.buffer));
    assert.equal(reused.length, MAX_SPARE_COPY_BLOCKS);
    for (const copy of again) recycleCopy(copy);
  });
});

describe('TargetReads', () => {
  const reads = (): TargetReads => new TargetReads(() => true);

  test('every session starts on the one shared buffer, of Node’s read size', () => {
    const a = reads().onread.buffer as () => Uint8Array;
    const b = reads().onread.buffer as () => Uint8Array;
    assert.equal(a().length, SHARED_READ_BYTES);
    assert.equal(a(), b());
  });

  test('a read that fills the shared buffer gives the session a larger buffer of its own', () => {
    const r = reads();
    const next = r.onread.buffer as () => Uint8Array;
    const shared = next();
    r.afterRead(SHARED_READ_BYTES - 1, false);
    assert.equal(next(), shared, 'a read short of full keeps the shared buffer');
    r.afterRead(SHARED_READ_BYTES, false);
    const own = next();
    assert.notEqual(own, shared);
    assert.equal(own.length, OWN_READ_BYTES);
    assert.ok(r.isOwn(own) && !r.isOwn(shared));
    r.release(false);
    assert.equal(next(), shared, 'released when the target closes');
  });

  test('the own buffer is given up at the first small read, but never while a write still holds its bytes', () => {
    const r = reads();
    const next = r.onread.buffer as () => Uint8Array;
    const shared = next();
    r.afterRead(SHARED_READ_BYTES, false);
    const own = next();
    r.afterRead(SMALL_READ_BYTES, false);
    assert.equal(next(), own, 'a read of SMALL_READ_BYTES is still streaming');
    r.afterRead(10, true);
    assert.equal(next(), own, 'lent out: kept');
    r.afterRead(10, false);
    assert.equal(next(), shared);
    assert.ok(!r.isOwn(own));
  });

  test(`at most ${MAX_OWN_BUFFERS} sessions hold a buffer of their own; a given-up buffer is reused`, () => {
    assert.equal(ownBuffersHeld(), 0);
    const streaming = Array.from({ length: MAX_OWN_BUFFERS + 1 }, reads);
    for (const r of streaming) r.afterRead(SHARED_READ_BYTES, false);
    assert.equal(ownBuffersHeld(), MAX_OWN_BUFFERS);
    const last = streaming.at(-1)!;
    const next = last.onread.buffer as () => Uint8Array;
    assert.equal(next().length, SHARED_READ_BYTES, 'over the cap: still the shared buffer');
    const first = streaming[0]!;
    const freed = (first.onread.buffer as () => Uint8Array)();
    first.release(false);
    last.afterRead(SHARED_READ_BYTES, false);
    assert.equal(next(), freed, 'the buffer given up is the one reused');
    // A buffer still lent out when its target closes is not reused.
    const lent = (streaming[1]!.onread.buffer as () => Uint8Array)();
    streaming[1]!.release(true);
    first.afterRead(SHARED_READ_BYTES, false);
    assert.notEqual((first.onread.buffer as () => Uint8Array)(), lent);
    for (const r of streaming) r.release(false);
    assert.equal(ownBuffersHeld(), 0);
  });

  test('a session that may not own a buffer (TLS or base64 client) stays on the shared one', () => {
    const r = reads();
    r.mayOwn = false;
    const next = r.onread.buffer as () => Uint8Array;
    const shared = next();
    r.afterRead(SHARED_READ_BYTES, false);
    assert.equal(next(), shared);
  });
});

/**
 * A target that alternates bursts (one write of up to 3 MiB: the proxy reads it in full buffers) with
 * trickles (a few writes of a few bytes, a tick apart: small reads), `total` bytes in all, then ends.
 */
async function startBurstySource(total: number): Promise<{ port: number; sent: Array<Promise<string>>; close(): Promise<void> }> {
  const sent: Array<Promise<string>> = [];
  const server = await startServer((socket: net.Socket) => {
    sent.push(
      (async () => {
        const hash = createHash('sha256');
        const write = async (chunk: Buffer): Promise<void> => {
          hash.update(chunk);
          if (!socket.write(chunk)) await new Promise((resolve) => socket.once('drain', resolve));
        };
        for (let left = total; left > 0; ) {
          const burst = randomBytes(Math.min(left, 1 + Math.floor(Math.random() * 3 * MiB)));
          left -= burst.length;
          await write(burst);
          for (let i = 0; i < 5 && left > 0; i++) {
            const drop = randomBytes(Math.min(left, 1 + Math.floor(Math.random() * 100)));
            left -= drop.length;
            await write(drop);
            await tick();
          }
        }
        socket.end();
        return hash.digest('hex');
      })(),
    );
  });
  return { port: server.port, sent, close: () => server.close() };
}

/** Hashes what a client receives (base64 text decoded); resolves at the close. */
function received(ws: WebSocket): Promise<{ sha256: string; bytes: number; code: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    const payload = isBinary ? data : Buffer.from(data.toString(), 'base64');
    hash.update(payload);
    bytes += payload.length;
  });
  return new Promise((resolve) => ws.once('close', (code: number) => resolve({ sha256: hash.digest('hex'), bytes, code })));
}

test('sessions side by side, bursts and trickles, fast, slow and base64 clients: every byte arrives in order', {
  timeout: 120_000,
}, async () => {
  const TOTAL = 24 * MiB;
  const SESSIONS = 8;
  const source = await startBurstySource(TOTAL);
  const proxy = await startProxy(['127.0.0.1:0', `127.0.0.1:${source.port}`]);
  const clients: WebSocket[] = [];
  try {
    const results = [];
    for (let i = 0; i < SESSIONS; i++) {
      // One session in four reads base64 text; every other one stops reading for long enough that the
      // kernel buffers fill and the proxy's writes wait on the client.
      const ws = await openClient(proxy.url, i % 4 === 3 ? ['base64'] : ['binary']);
      clients.push(ws);
      if (i % 2 === 1) readInBursts(ws, 2 * MiB, 300);
      results.push(received(ws));
    }
    const got = await Promise.all(results);
    const sent = await Promise.all(source.sent);
    // On a failure, the proxy's own counts tell a loss in the proxy from one in the client.
    const closes = (): string =>
      proxy
        .events()
        .filter((e) => e.event === 'close')
        .map((e) => `conn ${e.conn}: ${e.bytesFromTarget} bytes from target, code ${e.code}`)
        .join('; ');
    for (let i = 0; i < SESSIONS; i++) {
      assert.equal(got[i]!.code, 1000, `session ${i}: close code`);
      assert.equal(got[i]!.bytes, TOTAL, `session ${i}: byte count (the proxy's: ${closes()})`);
      assert.ok(sent.includes(got[i]!.sha256), `session ${i}: its bytes match what a target sent`);
    }
    assert.equal(new Set(got.map((g) => g.sha256)).size, SESSIONS, 'each session got its own target’s bytes');
  } finally {
    for (const ws of clients) ws.terminate();
    await proxy.stop();
    await source.close();
  }
});

// Pieces that divide TOTAL and the random block, so that every piece is whole. The larger ones come 2 ms
// apart, slower than the proxy reads them: each is a read of its own, copied, and those copies wait in
// the proxy while its client does not read (a block reused before its write completed would show).
for (const piece of [512, 24 * 1024]) {
  const copies = piece < RECYCLED_COPY_BYTES ? 'fresh copies' : 'copies in recycled blocks';
  test(`targets that send ${piece} bytes ${piece < RECYCLED_COPY_BYTES ? 'a tick' : 'every 2 ms'} (reads in the shared buffer, ${copies}) to clients that stop reading: every byte arrives`, {
    timeout: 60_000,
  }, async () => {
    const TOTAL = 24 * MiB;
    const SESSIONS = 4;
    const block = randomBytes(piece * (Math.floor(MiB / piece) + 7));
    const sent: Array<Promise<string>> = [];
    const source = await startServer((socket) => {
      sent.push(
        (async () => {
          const hash = createHash('sha256');
          // A piece at a time: the proxy's reads stay below the shared buffer's size. Successive pieces of a
          // random block, so that bytes overwritten by a later read (or a block reused too soon) would not
          // hash the same.
          for (let offset = 0; offset < TOTAL; offset += piece) {
            const chunk = block.subarray(offset % block.length, (offset % block.length) + piece);
            hash.update(chunk);
            if (!socket.write(chunk)) await new Promise((resolve) => socket.once('drain', resolve));
            if (piece < RECYCLED_COPY_BYTES) await tick();
            else await sleep(2);
          }
          socket.end();
          return hash.digest('hex');
        })(),
      );
    });
    const proxy = await startProxy(['127.0.0.1:0', `127.0.0.1:${source.port}`]);
    const clients: WebSocket[] = [];
    try {
      const results = [];
      for (let i = 0; i < SESSIONS; i++) {
        const ws = await openClient(proxy.url, ['binary']);
        clients.push(ws);
        results.push(received(ws));
        // Not reading for a while fills the kernel's buffers, so the proxy's writes to this client wait
        // while the other sessions go on reading into the same shared buffer.
        ws.pause();
      }
      await new Promise((resolve) => setTimeout(resolve, 2000));
      for (const ws of clients) ws.resume();
      const got = await Promise.all(results);
      const hashes = await Promise.all(sent);
      for (const [i, g] of got.entries()) {
        assert.equal(g.code, 1000, `session ${i}: close code`);
        assert.equal(g.bytes, TOTAL, `session ${i}: byte count`);
        assert.ok(hashes.includes(g.sha256), `session ${i}: its bytes match what a target sent`);
      }
    } finally {
      for (const ws of clients) ws.terminate();
      await proxy.stop();
      await source.close();
    }
  });
}
