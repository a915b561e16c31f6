// Properties of the first-bytes dispatch with the real routes' matchers (Flash policy, --ssl-only's
// plain refusal): any bytes, in any pieces, go to the same place as in one piece, and whoever gets the
// connection reads every byte, in order. A Node Duplex stands in for the socket so that each piece
// arrives as its own 'data' event, which TCP on loopback cannot promise.
import assert from 'node:assert/strict';
import { Duplex } from 'node:stream';
import { describe, test } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import fc from 'fast-check';
import { createDispatcher, type FirstBytesRoute } from '../../src/first-bytes/dispatch.js';
import { createFlashPolicyRoute } from '../../src/first-bytes/flash-policy.js';
import { createPlainRefusedRoute } from '../../src/first-bytes/tls.js';
import { chunked, propertyRuns } from '../helpers/fast-check.js';
import { captureLog } from '../helpers/log-capture.js';

/** Feeds `chunks` through a dispatcher; resolves with who got the connection and what it read. */
async function dispatch(chunks: readonly Buffer[], sslOnly: boolean): Promise<{ to: string; read: Buffer }> {
  const { logger } = captureLog();
  let result: { to: string; read: Buffer } | undefined;
  const taker = (name: string) => (socket: Duplex) => {
    const read: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => read.push(chunk));
    socket.once('end', () => (result = { to: name, read: Buffer.concat(read) }));
  };
  const flash = createFlashPolicyRoute(logger);
  const plain = createPlainRefusedRoute(logger);
  // As the proxy orders them after TLS: the Flash route, or with --ssl-only the refusal instead.
  const routes: FirstBytesRoute[] = [
    sslOnly
      ? { name: 'plain-refused', match: plain.match, handle: taker('plain-refused') }
      : { name: 'flash', match: flash.match, handle: taker('flash') },
  ];
  const socket = new Duplex({ read() {}, write: (_chunk, _encoding, done) => done() });
  socket.once('close', () => (result ??= { to: 'destroyed', read: Buffer.alloc(0) }));
  createDispatcher({ routes, fallback: taker('http') })(socket);
  for (const chunk of chunks) {
    socket.push(chunk);
    await tick();
  }
  socket.push(null);
  for (let i = 0; i < 20 && result === undefined; i++) await tick();
  assert.ok(result, 'nobody took the connection and it was not closed');
  return result;
}

const flashRequest = Buffer.from('<policy-file-request/>\0');
const firstBytes = fc.oneof(
  fc.uint8Array({ maxLength: 100 }),
  fc
    .tuple(fc.integer({ min: 0, max: flashRequest.length }), fc.uint8Array({ maxLength: 40 }))
    .map(([cut, rest]) => Uint8Array.from([...flashRequest.subarray(0, cut), ...rest])),
  fc.uint8Array({ maxLength: 40 }).map((rest) => Uint8Array.from([0x16, ...rest])),
);

describe('first-bytes dispatch', () => {
  test('any bytes in any pieces go where they go in one piece, and the taker reads them all', async () => {
    await fc.assert(
      fc.asyncProperty(chunked(firstBytes), fc.boolean(), async ({ bytes, chunks }, sslOnly) => {
        const whole = await dispatch([bytes], sslOnly);
        const split = await dispatch(chunks, sslOnly);
        assert.equal(split.to, whole.to);
        if (split.to !== 'destroyed') assert.deepEqual(split.read, bytes);
        // Only bytes that never decided anything (a Flash request cut short, nothing at all) are dropped.
        if (split.to === 'destroyed') assert.ok(flashRequest.subarray(0, bytes.length).equals(bytes));
      }),
      propertyRuns(300),
    );
  });
});
