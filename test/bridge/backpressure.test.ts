// Backpressure through the real CLI: 256 MiB towards a side that reads slowly, in each direction. The
// proxy must hold the fast side back instead of buffering, so its resident memory stays bounded; every
// byte must still arrive intact.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, type TestContext, test } from 'node:test';
import type { WebSocket } from 'ws';
import { type RunningProxy, startProxy } from '../helpers/proxy.js';
import type { TestServer } from '../helpers/targets.js';
import { collect, openClient } from '../helpers/ws-client.js';
import { memoryOf, readInBursts, sendRandom, startSink, startSource } from './support.js';

const MiB = 1024 * 1024;
const TOTAL = 256 * MiB;
/**
 * Peak resident memory the proxy may gain over its idle footprint while moving TOTAL bytes: far below
 * TOTAL, so buffering what the slow side has not taken fails it. Not tighter, because the upload's
 * peak is mostly received messages that are already garbage: V8 frees Buffer memory in collections it
 * starts after that memory grows by tens of MiB, and later V8s wait longer (growth ~42 MiB on Node 20,
 * ~67 MiB on Node 26, download ~3-5 MiB on both).
 */
const GROWTH_LIMIT = 96 * MiB;

/**
 * Starts a proxy towards `target` and returns it with its idle resident memory. Fresh for each test,
 * since the peak (VmHWM) counts from the process's start.
 */
async function startMeasuredProxy(target: TestServer): Promise<{ proxy: RunningProxy; idleRss: number }> {
  const proxy = await startProxy(['127.0.0.1:0', `127.0.0.1:${target.port}`]);
  return { proxy, idleRss: memoryOf(proxy.proc.pid!).rss };
}

/** Checks the proxy's peak resident memory against its idle footprint, and reports both. */
function assertBounded(t: TestContext, proxy: RunningProxy, idleRss: number): void {
  const { peak } = memoryOf(proxy.proc.pid!);
  const growth = peak - idleRss;
  t.diagnostic(
    `proxy RSS idle ${(idleRss / MiB).toFixed(1)} MiB, peak ${(peak / MiB).toFixed(1)} MiB, growth ${(growth / MiB).toFixed(1)} MiB`,
  );
  assert.ok(growth < GROWTH_LIMIT, `the proxy's peak RSS grew by ${(growth / MiB).toFixed(1)} MiB (limit ${GROWTH_LIMIT / MiB} MiB)`);
}

/** Hashes everything a client receives; resolves at the close with the count, hash and close code. */
function hashIncoming(ws: WebSocket): Promise<{ bytes: number; sha256: string; code: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  ws.on('message', (data: Buffer) => {
    hash.update(data);
    bytes += data.length;
  });
  return new Promise((resolve) => ws.once('close', (code: number) => resolve({ bytes, sha256: hash.digest('hex'), code })));
}

describe('backpressure', () => {
  test(`download: ${TOTAL / MiB} MiB to a client that reads in slow bursts; the proxy's memory stays bounded`, {
    timeout: 120_000,
  }, async (t) => {
    const source = await startSource(TOTAL);
    const { proxy, idleRss } = await startMeasuredProxy(source);
    let ws: WebSocket | undefined;
    try {
      ws = await openClient(proxy.url, ['binary']);
      // Stop reading for 20 ms after every MiB: far slower than the source, so the proxy must pause it.
      readInBursts(ws, MiB, 20);
      const received = await hashIncoming(ws);
      const sent = await source.nextSent();
      assert.equal(received.code, 1000);
      assert.equal(received.bytes, TOTAL);
      assert.equal(received.sha256, sent.sha256);
      assertBounded(t, proxy, idleRss);
    } finally {
      ws?.terminate();
      await proxy.stop();
      await source.close();
    }
  });

  test(`upload: ${TOTAL / MiB} MiB to a target that reads in slow bursts; the proxy's memory stays bounded`, {
    timeout: 120_000,
  }, async (t) => {
    // Stop reading for 20 ms after every MiB.
    const sink = await startSink({ burstBytes: MiB, pauseMs: 20 });
    const { proxy, idleRss } = await startMeasuredProxy(sink);
    let ws: WebSocket | undefined;
    try {
      ws = await openClient(proxy.url, ['binary']);
      const closed = collect(ws);
      const sent = await sendRandom(ws, TOTAL);
      ws.close(1000);
      const got = await sink.nextResult();
      assert.equal((await closed).code, 1000);
      assert.equal(got.bytes, TOTAL);
      assert.equal(got.sha256, sent.sha256);
      assertBounded(t, proxy, idleRss);
    } finally {
      ws?.terminate();
      await proxy.stop();
      await sink.close();
    }
  });
});
